// SPDX-License-Identifier: MIT
#pragma once
// One TLS client session over a connected socket. wolfSSL never touches the socket: its I/O
// callbacks only move ciphertext between wolfSSL and two buffers here, and the coroutines
// below move those buffers through the shard's io_uring (recv / send), so TLS bytes travel
// like every other byte.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <conpool/error.hpp>
#include <conpool/task.hpp>
#include <conpool/tls.hpp>

struct WOLFSSL;
struct WOLFSSL_SESSION;

namespace conpool::detail {

class tls_stream {
 public:
  /// A session of `ctx` for `server_name` (SNI and the name verified), offering `resume` (a
  /// session from an earlier connection to the same endpoint) when not null.
  /// Throws std::bad_alloc.
  tls_stream(const tls_context& ctx, const std::string& server_name, WOLFSSL_SESSION* resume);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  /// The client handshake on `fd`. Errors: errc::tls_verify_failed (certificate or name),
  /// errc::tls_handshake_failed (anything else the peer or wolfSSL refused), the socket's.
  /// `reason()` then says what wolfSSL said.
  task<result<void>> handshake(int fd);
  /// Plaintext, at most `buffer.size()` bytes; 0 when the server sent close_notify or closed.
  task<result<std::size_t>> read_some(int fd, std::span<std::byte> buffer);
  /// Encrypts and sends all of `bytes`.
  task<result<void>> write_all(int fd, std::span<const std::byte> bytes);
  /// Sends close_notify (best effort; never waits for the peer's).
  task<void> shutdown(int fd);

  /// Queues close_notify and returns every ciphertext byte not sent yet, for a send the caller
  /// makes (the pool's, linked before its close); valid until this stream changes.
  std::span<const std::byte> close_notify() noexcept;
  /// wolfSSL's words for the last failure.
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  /// The handshake resumed an earlier session.
  [[nodiscard]] bool resumed() const noexcept;
  /// The protocol the server chose by ALPN; empty when none.
  [[nodiscard]] std::string alpn() const;
  /// The session to offer on the next connection (a new reference; free with
  /// free_session), or null.
  [[nodiscard]] WOLFSSL_SESSION* session() const noexcept;

  /// Where the pool's idle watcher receives for a TLS connection: unlike a plain one, its
  /// bytes are records (tickets, key updates, alerts) that must go through wolfSSL.
  [[nodiscard]] std::span<std::byte> watch_buffer() noexcept {
    return std::as_writable_bytes(std::span(watch_));
  }
  enum class verdict { quiet, spoke, closed };
  /// Takes `n` bytes the watcher received into the stream (they are the stream's, in order).
  /// With `judge` (the connection is idle), processes them: only post-handshake records
  /// (NewSessionTicket, KeyUpdate) is `quiet`; application data is `spoke`; close_notify or an
  /// error is `closed`.
  verdict absorb(std::size_t n, bool judge) noexcept;

 private:
  static int on_recv(WOLFSSL* ssl, char* buf, int size, void* self) noexcept;
  static int on_send(WOLFSSL* ssl, char* buf, int size, void* self) noexcept;
  task<result<void>> flush(int fd);
  task<result<void>> fill(int fd);
  std::error_code failure(int ret, bool handshaking);

  WOLFSSL* ssl_ = nullptr;
  // Ciphertext received, not yet taken by wolfSSL: in_[in_begin_, in_end_). Never shrunk, and
  // grown only when full, so a receive does not pay for zeroing its buffer.
  std::vector<char> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  // Room for `n` more bytes after in_end_ (compacting first).
  char* room(std::size_t n);
  std::vector<char> out_;  // ciphertext wolfSSL produced, not yet sent
  bool eof_ = false;
  std::string reason_;
  std::array<char, 1024> watch_{};
};

/// Releases a session from tls_stream::session (null is fine).
void free_session(WOLFSSL_SESSION* s) noexcept;

}  // namespace conpool::detail
