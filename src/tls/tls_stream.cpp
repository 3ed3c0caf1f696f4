// SPDX-License-Identifier: MIT
#include "tls_stream.hpp"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/error-ssl.h>

#include <algorithm>
#include <cstring>
#include <new>

#include <conpool/address.hpp>
#include <conpool/io.hpp>

namespace conpool::detail {
namespace {

constexpr std::size_t read_chunk = 16 * 1024 + 512;  // one TLS record and its overhead

bool is_verify_error(int err) {
  switch (err) {
    case DOMAIN_NAME_MISMATCH:
    case VERIFY_CERT_ERROR:
    case ASN_NO_SIGNER_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_SELF_SIGNED_E:
      return true;
    default:
      return false;
  }
}

// wolfSSL keeps a fixed-point ECC cache per thread (FP_ECC: ~3 MB once a thread has verified
// an ECDSA signature), freed only by wc_ecc_fp_free on that thread. A runtime's shard threads
// end with their run: each frees its own cache then, or every run would leak one per thread.
void release_ecc_cache_at_thread_exit() noexcept {
#ifdef FP_ECC
  struct releaser {
    ~releaser() { wc_ecc_fp_free(); }
  };
  thread_local releaser r;
  (void)r;
#endif
}

}  // namespace

tls_stream::tls_stream(const tls_context& ctx, const std::string& server_name,
                       WOLFSSL_SESSION* resume) {
  release_ecc_cache_at_thread_exit();
  ssl_ = wolfSSL_new(static_cast<WOLFSSL_CTX*>(ctx.native_handle()));
  if (ssl_ == nullptr) throw std::bad_alloc();
  wolfSSL_SSLSetIORecv(ssl_, &tls_stream::on_recv);
  wolfSSL_SSLSetIOSend(ssl_, &tls_stream::on_send);
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
  // SNI carries host names only: never an IPv4 or IPv6 literal (RFC 6066 section 3). The name
  // is still verified against the certificate either way.
  if (!socket_address::parse(server_name, 0)) {
    wolfSSL_UseSNI(ssl_, WOLFSSL_SNI_HOST_NAME, server_name.data(),
                   static_cast<unsigned short>(server_name.size()));
  }
  if (!ctx.options().insecure_skip_verify) wolfSSL_check_domain_name(ssl_, server_name.c_str());
  if (!ctx.options().alpn.empty()) {
    std::string list;
    for (const std::string& p : ctx.options().alpn) list += (list.empty() ? "" : ",") + p;
    wolfSSL_UseALPN(ssl_, list.data(), static_cast<unsigned>(list.size()),
                    WOLFSSL_ALPN_FAILED_ON_MISMATCH);
  }
  if (resume != nullptr) wolfSSL_set_session(ssl_, resume);
  in_.resize(2 * read_chunk);
}

tls_stream::~tls_stream() { wolfSSL_free(ssl_); }

int tls_stream::on_recv(WOLFSSL*, char* buf, int size, void* p) noexcept {
  auto& self = *static_cast<tls_stream*>(p);
  const std::size_t have = self.in_end_ - self.in_begin_;
  if (have == 0) {
    return self.eof_ ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
  }
  const std::size_t n = std::min(have, static_cast<std::size_t>(size));
  std::memcpy(buf, self.in_.data() + self.in_begin_, n);
  self.in_begin_ += n;
  if (self.in_begin_ == self.in_end_) self.in_begin_ = self.in_end_ = 0;
  return static_cast<int>(n);
}

int tls_stream::on_send(WOLFSSL*, char* buf, int size, void* p) noexcept {
  auto& self = *static_cast<tls_stream*>(p);
  self.out_.insert(self.out_.end(), buf, buf + size);  // sent by flush(), through the ring
  return size;
}

task<result<void>> tls_stream::flush(int fd) {
  std::size_t sent = 0;
  while (sent < out_.size()) {
    result<std::size_t> n = co_await io::send(
        fd, std::as_bytes(std::span(out_.data() + sent, out_.size() - sent)), MSG_NOSIGNAL);
    if (!n) co_return fail(n.error());
    sent += *n;
  }
  out_.clear();
  co_return result<void>{};
}

char* tls_stream::room(std::size_t n) {
  if (in_begin_ > 0) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_.size() - in_end_ < n) in_.resize(in_end_ + n);
  return in_.data() + in_end_;
}

task<result<void>> tls_stream::fill(int fd) {
  char* at = room(read_chunk);
  result<std::size_t> n = co_await io::recv(
      fd, std::as_writable_bytes(std::span(at, in_.size() - in_end_)));
  if (!n) co_return fail(n.error());
  in_end_ += *n;
  if (*n == 0) eof_ = true;
  co_return result<void>{};
}

std::error_code tls_stream::failure(int ret, bool handshaking) {
  const int err = wolfSSL_get_error(ssl_, ret);
  char text[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), text, sizeof text);
  reason_ = text;
  if (handshaking && is_verify_error(err)) return make_error_code(errc::tls_verify_failed);
  if (handshaking) return make_error_code(errc::tls_handshake_failed);
  if (err == SOCKET_PEER_CLOSED_E || err == WOLFSSL_ERROR_ZERO_RETURN) {
    return make_error_code(errc::end_of_stream);
  }
  return make_error_code(std::errc::protocol_error);
}

task<result<void>> tls_stream::handshake(int fd) {
  for (;;) {
    const int ret = wolfSSL_connect(ssl_);
    if (auto sent = co_await flush(fd); !sent) co_return fail(sent.error());
    if (ret == WOLFSSL_SUCCESS) co_return result<void>{};
    if (wolfSSL_get_error(ssl_, ret) != WOLFSSL_ERROR_WANT_READ || eof_) {
      co_return fail(failure(ret, true));
    }
    if (auto got = co_await fill(fd); !got) co_return fail(got.error());
  }
}

task<result<std::size_t>> tls_stream::read_some(int fd, std::span<std::byte> buffer) {
  for (;;) {
    const int ret = wolfSSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
    // Reading may make records to send (key updates, alerts): they go out first.
    if (!out_.empty()) {
      if (auto sent = co_await flush(fd); !sent) co_return fail(sent.error());
    }
    if (ret > 0) co_return static_cast<std::size_t>(ret);
    const int err = wolfSSL_get_error(ssl_, ret);
    if (err == WOLFSSL_ERROR_ZERO_RETURN || (err == WOLFSSL_ERROR_WANT_READ && eof_)) {
      co_return std::size_t{0};  // close_notify, or the peer closed
    }
    if (err != WOLFSSL_ERROR_WANT_READ) co_return fail(failure(ret, false));
    if (auto got = co_await fill(fd); !got) co_return fail(got.error());
  }
}

task<result<void>> tls_stream::write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 16 * 1024));
    const int ret = wolfSSL_write(ssl_, bytes.data(), chunk);
    if (ret <= 0) co_return fail(failure(ret, false));  // writes never wait: on_send buffers
    bytes = bytes.subspan(static_cast<std::size_t>(ret));
    if (auto sent = co_await flush(fd); !sent) co_return fail(sent.error());
  }
  co_return result<void>{};
}

task<void> tls_stream::shutdown(int fd) {
  (void)wolfSSL_shutdown(ssl_);  // queues close_notify; the peer's is not awaited
  (void)co_await flush(fd);
}

std::span<const std::byte> tls_stream::close_notify() noexcept {
  (void)wolfSSL_shutdown(ssl_);  // into out_, through on_send
  return std::as_bytes(std::span(out_.data(), out_.size()));
}

bool tls_stream::resumed() const noexcept { return wolfSSL_session_reused(ssl_) == 1; }

std::string tls_stream::alpn() const {
  char* name = nullptr;
  unsigned short size = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl_, &name, &size) != WOLFSSL_SUCCESS || name == nullptr) {
    return {};
  }
  return {name, size};
}

WOLFSSL_SESSION* tls_stream::session() const noexcept { return wolfSSL_get1_session(ssl_); }

void free_session(WOLFSSL_SESSION* s) noexcept {
  if (s != nullptr) wolfSSL_SESSION_free(s);
}

tls_stream::verdict tls_stream::absorb(std::size_t n, bool judge) noexcept {
  std::memcpy(room(n), watch_.data(), n);
  in_end_ += n;
  if (!judge) return verdict::quiet;
  char byte = 0;
  const int ret = wolfSSL_read(ssl_, &byte, 1);
  if (ret > 0) return verdict::spoke;  // application data nobody asked for
  const int err = wolfSSL_get_error(ssl_, ret);
  return err == WOLFSSL_ERROR_WANT_READ ? verdict::quiet : verdict::closed;
}

}  // namespace conpool::detail
