// SPDX-License-Identifier: MIT
#pragma once
/// `flow`: an established byte stream (a connected TCP socket), and `connect`.
///
/// Reads and writes go through the shard's ring. A flow owns its socket: `co_await close()`
/// closes it through io_uring; a flow destroyed while open closes it with close(2).
///
/// Example:
///   result<flow> f = co_await connect(*socket_address::parse("127.0.0.1:6379"), 1s);
///   if (!f) co_return fail(f.error());
///   co_await f->write_all("PING\r\n");
///   std::array<std::byte, 7> pong;
///   result<void> r = co_await f->read_exact(pong);

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <conpool/address.hpp>
#include <conpool/error.hpp>
#include <conpool/io.hpp>
#include <conpool/task.hpp>

namespace conpool {

class tls_context;
namespace detail {
class tls_stream;
}

class flow {
 public:
  /// No socket.
  flow() noexcept;
  /// Adopts a connected socket.
  explicit flow(int fd) noexcept;
  flow(flow&& other) noexcept;
  flow& operator=(flow&& other) noexcept;
  flow(const flow&) = delete;
  flow& operator=(const flow&) = delete;
  /// Closes the socket with close(2) if still open.
  ~flow();

  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

  /// Reads what is available, at most `buffer.size()` bytes; 0 at end of stream. The first
  /// read after a write waits for readiness before trying (a reply is rarely there yet).
  /// Errors: the system's (connection_reset, ...), operation_canceled.
  task<result<std::size_t>> read_some(std::span<std::byte> buffer);
  /// Reads exactly `buffer.size()` bytes. Errors: `errc::end_of_stream` when the peer closes
  /// first; the system's; operation_canceled.
  task<result<void>> read_exact(std::span<std::byte> buffer);
  /// Writes all of `bytes`, however many sends it takes. Errors: the system's
  /// (broken_pipe, connection_reset), operation_canceled.
  task<result<void>> write_all(std::span<const std::byte> bytes);
  /// `write_all` of a string's bytes.
  task<result<void>> write_all(std::string_view text);
  /// Closes the socket through io_uring (after a TLS close_notify). Closing is never cut
  /// half-way by a cancel.
  task<result<void>> close();

  /// Runs the TLS client handshake over this connection with `ctx`, sending `server_name` as
  /// SNI and verifying the certificate against it (unless `ctx` skips verification); from then
  /// on reads and writes are TLS. Errors: errc::tls_verify_failed, errc::tls_handshake_failed
  /// (`tls_reason()` has wolfSSL's words), the socket's, operation_canceled.
  task<result<void>> start_tls(const tls_context& ctx, std::string server_name);
  /// True once start_tls has begun.
  [[nodiscard]] bool is_tls() const noexcept { return tls_ != nullptr; }
  /// The protocol the server chose by ALPN; empty without TLS or ALPN.
  [[nodiscard]] std::string tls_alpn() const;
  /// The TLS handshake resumed an earlier session.
  [[nodiscard]] bool tls_resumed() const noexcept;
  /// wolfSSL's words for the last TLS failure; empty when none.
  [[nodiscard]] std::string tls_reason() const;
  /// Gives up ownership of the socket, returning it.
  int release() noexcept;
  /// Bytes this flow has given its readers (after TLS decryption), from the start: the
  /// difference over a span of work tells whether any reply byte arrived in it.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_read_; }

 private:
  friend struct detail_flow_access;
  int fd_ = -1;
  bool wrote_ = false;  // the last operation was a write: the next read polls first
  std::uint64_t bytes_read_ = 0;
  std::unique_ptr<detail::tls_stream> tls_;
};

/// TCP keepalive (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT): after `idle` with
/// nothing sent or received the kernel probes the peer every `interval`; after `probes`
/// unanswered probes it fails the connection with ETIMEDOUT (an idle pooled connection is then
/// evicted, a read on a leased one fails). Whole seconds, 1 to 32767; probes 1 to 127.
/// Detection takes about idle + probes * interval.
struct keepalive_settings {
  std::chrono::duration<double> idle{15.0};
  std::chrono::duration<double> interval{5.0};
  int probes = 3;
};

/// What `connect` sets on a socket before it connects (TCP_NODELAY always).
struct socket_options {
  /// TCP keepalive; none = off (the kernel's default).
  std::optional<keepalive_settings> keepalive;
  /// TCP_USER_TIMEOUT: data sent and not acknowledged for this long fails the connection with
  /// ETIMEDOUT (and it bounds keepalive probing too); none = the kernel's (retransmissions
  /// for ~15 minutes). Milliseconds, 1 to INT_MAX.
  std::optional<std::chrono::milliseconds> user_timeout;
};

/// Connects a stream socket to `to`: TCP (TCP_NODELAY set: pooled request/response traffic
/// wants no Nagle delay, as in Go's net; `options` set before the connect), or a Unix domain
/// socket (no options apply). `timeout` bounds the connect
/// (a linked IORING_OP_LINK_TIMEOUT).
/// Errors: the system's (connection_refused, network_unreachable, ...),
/// `errc::connect_timeout`, operation_canceled. No socket is left open on failure.
task<result<flow>> connect(socket_address to, op_timeout timeout = {},
                           socket_options options = {});

}  // namespace conpool
