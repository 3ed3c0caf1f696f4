// SPDX-License-Identifier: MIT
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include <conpool/cancel.hpp>
#include <conpool/flow.hpp>
#include <conpool/tls.hpp>

#include "conpool_config.h"
#include "connect_chain.hpp"
#include "flow_access.hpp"
#include "shard_core.hpp"
#if CONPOOL_HAVE_TLS
#include "tls_stream.hpp"
#endif

namespace conpool {

#if !CONPOOL_HAVE_TLS
namespace detail {
// Never made without TLS; complete only so that flow's unique_ptr can be destroyed.
class tls_stream {};
}  // namespace detail
#endif

flow::flow() noexcept = default;
flow::flow(int fd) noexcept : fd_(fd) {}

flow::flow(flow&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      wrote_(std::exchange(other.wrote_, false)),
      bytes_read_(std::exchange(other.bytes_read_, 0)),
      tls_(std::move(other.tls_)) {}

flow& flow::operator=(flow&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    wrote_ = std::exchange(other.wrote_, false);
    bytes_read_ = std::exchange(other.bytes_read_, 0);
    tls_ = std::move(other.tls_);
  }
  return *this;
}

flow::~flow() {
  if (fd_ >= 0) ::close(fd_);
}

int flow::release() noexcept { return std::exchange(fd_, -1); }

task<result<std::size_t>> flow::read_some(std::span<std::byte> buffer) {
  result<std::size_t> n;
#if CONPOOL_HAVE_TLS
  if (tls_) {
    n = co_await tls_->read_some(fd_, buffer);
  } else
#endif
  if (std::exchange(wrote_, false)) {
    n = co_await io::recv_reply(fd_, buffer);
  } else {
    n = co_await io::recv(fd_, buffer);
  }
  if (n) bytes_read_ += *n;
  co_return n;
}

task<result<void>> flow::read_exact(std::span<std::byte> buffer) {
  while (!buffer.empty()) {
    result<std::size_t> n;
    if (tls_) {
      n = co_await read_some(buffer);
    } else if (std::exchange(wrote_, false)) {
      n = co_await io::recv_reply(fd_, buffer);
    } else {
      n = co_await io::recv(fd_, buffer);
    }
    if (!n) co_return fail(n.error());
    if (*n == 0) co_return fail(errc::end_of_stream);
    if (!tls_) bytes_read_ += *n;  // read_some counted a TLS read
    buffer = buffer.subspan(*n);
  }
  co_return result<void>{};
}

task<result<void>> flow::write_all(std::span<const std::byte> bytes) {
#if CONPOOL_HAVE_TLS
  if (tls_) co_return co_await tls_->write_all(fd_, bytes);
#endif
  while (!bytes.empty()) {
    result<std::size_t> n = co_await io::send(fd_, bytes);
    if (!n) co_return fail(n.error());
    bytes = bytes.subspan(*n);
  }
  wrote_ = true;
  co_return result<void>{};
}

task<result<void>> flow::write_all(std::string_view text) {
  return write_all(std::as_bytes(std::span(text.data(), text.size())));
}

namespace {
task<result<void>> close_fd(int fd) { co_return co_await io::close(fd); }
}  // namespace

task<result<void>> flow::close() {
  if (fd_ < 0) co_return result<void>{};
#if CONPOOL_HAVE_TLS
  if (tls_) co_await tls_->shutdown(fd_);  // close_notify first (a cancel may cut it short)
#endif
  // Shielded: once started, a close runs to its end even if the caller is cancelled.
  co_return co_await shield(close_fd(std::exchange(fd_, -1)));
}

namespace {

// The options a TCP socket gets before its connect; none for AF_UNIX (no TCP under it).
unsigned options_for(int family, const socket_options& o,
                     detail::int_option (&out)[detail::max_chain_options]) noexcept {
  if (family == AF_UNIX) return 0;
  unsigned n = 0;
  out[n++] = {IPPROTO_TCP, TCP_NODELAY, 1};
  if (o.keepalive) {
    const keepalive_settings& k = *o.keepalive;
    out[n++] = {SOL_SOCKET, SO_KEEPALIVE, 1};
    out[n++] = {IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(k.idle.count())};
    out[n++] = {IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(k.interval.count())};
    out[n++] = {IPPROTO_TCP, TCP_KEEPCNT, k.probes};
  }
  if (o.user_timeout) {
    out[n++] = {IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(o.user_timeout->count())};
  }
  return n;
}

// The same options by setsockopt(2): where the ring takes no socket commands, and to learn
// which option a failed chain stumbled on.
result<void> set_options(int fd, std::span<const detail::int_option> options) {
  for (const detail::int_option& o : options) {
    if (::setsockopt(fd, o.level, o.name, &o.value, sizeof o.value) != 0) {
      return fail(std::error_code(errno, std::system_category()));
    }
  }
  return {};
}

}  // namespace

task<result<flow>> connect(socket_address to, op_timeout timeout, socket_options options) {
  // socket(2), not IORING_OP_SOCKET: the batch below needs the descriptor when it is prepared,
  // and a socket SQE would cost a loop turn before the connect could even be queued.
  const int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return fail(std::error_code(errno, std::system_category()));
  flow f(fd);  // closes the socket on every failure path below
  detail::int_option list[detail::max_chain_options];
  const std::span<const detail::int_option> opts(list, options_for(to.family(), options, list));
  detail::shard_core& shard = detail::shard_core::current();
  if (!opts.empty() && shard.socket_commands() && opts.size() + 2 <= shard.sq_entries()) {
    // One batch: the options, the connect, its timeout (connect_chain.hpp).
    detail::connect_chain_op chain(fd, to, timeout, opts);
    result<void> r = co_await chain;
    if (r) co_return std::move(f);
    if (!chain.lead_error()) co_return fail(r.error());
    // An option's command failed: the syscalls name the error, or show that this kernel's
    // sockets take no commands (then the shard stops sending them).
    if (result<void> set = set_options(fd, opts); !set) co_return fail(set.error());
    shard.no_socket_commands();
  } else if (result<void> set = set_options(fd, opts); !set) {
    co_return fail(set.error());
  }
  result<void> r = co_await io::connect(fd, to, timeout);
  if (!r) co_return fail(r.error());
  co_return std::move(f);
}

#if CONPOOL_HAVE_TLS

task<result<void>> flow::start_tls(const tls_context& ctx, std::string server_name) {
  return detail_flow_access::start_tls(*this, ctx, std::move(server_name), nullptr);
}

task<result<void>> detail_flow_access::start_tls(flow& f, const tls_context& ctx,
                                                 std::string server_name,
                                                 WOLFSSL_SESSION* resume) {
  f.tls_ = std::make_unique<detail::tls_stream>(ctx, server_name, resume);
  co_return co_await f.tls_->handshake(f.fd_);
}
std::string flow::tls_alpn() const { return tls_ ? tls_->alpn() : std::string(); }
bool flow::tls_resumed() const noexcept { return tls_ && tls_->resumed(); }
std::string flow::tls_reason() const { return tls_ ? tls_->reason() : std::string(); }

#else

task<result<void>> flow::start_tls(const tls_context&, std::string) {
  throw std::logic_error("conpool::flow::start_tls: this conpool was built without TLS (-Dtls)");
  co_return result<void>{};
}

task<result<void>> detail_flow_access::start_tls(flow& f, const tls_context& ctx,
                                                 std::string server_name, WOLFSSL_SESSION*) {
  return f.start_tls(ctx, std::move(server_name));
}
std::string flow::tls_alpn() const { return {}; }
bool flow::tls_resumed() const noexcept { return false; }
std::string flow::tls_reason() const { return {}; }

#endif

}  // namespace conpool
