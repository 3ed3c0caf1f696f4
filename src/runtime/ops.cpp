// SPDX-License-Identifier: MIT
// The concrete operations: what each puts in its SQE and how its CQE becomes a result.
#include <sys/socket.h>

#include <cerrno>

#include <conpool/io.hpp>

#include "shard_core.hpp"

namespace conpool::io {
namespace {

template <class Op>
Op& self(detail::io_op& op) noexcept {
  return static_cast<Op&>(op);
}

result<void> void_result(int res, std::error_code error) noexcept {
  if (res < 0) return fail(error);
  return {};
}

}  // namespace

nop_op::nop_op() noexcept : io_op(&nop_op::prep) {}
void nop_op::prep(io_op&, io_uring_sqe& sqe) noexcept { io_uring_prep_nop(&sqe); }
result<void> nop_op::await_resume() const noexcept { return void_result(res(), error({})); }

socket_op::socket_op(int domain, int type, int protocol) noexcept
    : io_op(&socket_op::prep), domain_(domain), type_(type | SOCK_CLOEXEC), protocol_(protocol) {
  sync_ = !detail::shard_core::current().has_socket_op();
}
bool socket_op::open_now(detail::cancel_node* node) noexcept {
  if (node != nullptr && node->cancelled()) {
    sync_res_ = -ECANCELED;
    return false;
  }
  const int fd = ::socket(domain_, type_, protocol_);
  sync_res_ = fd >= 0 ? fd : -errno;
  return false;
}
void socket_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  auto& s = self<socket_op>(op);
  io_uring_prep_socket(&sqe, s.domain_, s.type_, s.protocol_, 0);
}
result<int> socket_op::await_resume() const noexcept {
  if (sync_) {
    if (sync_res_ < 0) return fail(errno_error(sync_res_));
    return sync_res_;
  }
  if (res() < 0) return fail(error({}));
  return res();
}

connect_op::connect_op(int fd, const socket_address& to, op_timeout timeout) noexcept
    : io_op(&connect_op::prep, timeout), to_(to), fd_(fd) {}
void connect_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  auto& s = self<connect_op>(op);
  io_uring_prep_connect(&sqe, s.fd_, s.to_.data(), s.to_.size());
}
result<void> connect_op::await_resume() const noexcept {
  return void_result(res(), error(make_error_code(errc::connect_timeout)));
}

accept_op::accept_op(int fd) noexcept : io_op(&accept_op::prep), fd_(fd) {}
void accept_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  io_uring_prep_accept(&sqe, self<accept_op>(op).fd_, nullptr, nullptr, SOCK_CLOEXEC);
}
result<int> accept_op::await_resume() const noexcept {
  if (res() < 0) return fail(error({}));
  return res();
}

send_op::send_op(int fd, std::span<const std::byte> bytes, int flags, op_timeout timeout) noexcept
    : io_op(&send_op::prep, timeout),
      data_(bytes.data()),
      size_(bytes.size()),
      fd_(fd),
      flags_(flags | MSG_NOSIGNAL) {}
void send_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  auto& s = self<send_op>(op);
  io_uring_prep_send(&sqe, s.fd_, s.data_, s.size_, s.flags_);
}
result<std::size_t> send_op::await_resume() const noexcept {
  if (res() < 0) return fail(error(make_error_code(errc::timed_out)));
  return static_cast<std::size_t>(res());
}

recv_op::recv_op(int fd, std::span<std::byte> buffer, int flags, op_timeout timeout,
                 bool poll_first) noexcept
    : io_op(&recv_op::prep, timeout),
      data_(buffer.data()),
      size_(buffer.size()),
      fd_(fd),
      flags_(flags),
      poll_first_(poll_first) {}
void recv_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  auto& s = self<recv_op>(op);
  io_uring_prep_recv(&sqe, s.fd_, s.data_, s.size_, s.flags_);
  if (s.poll_first_) sqe.ioprio |= IORING_RECVSEND_POLL_FIRST;
}
result<std::size_t> recv_op::await_resume() const noexcept {
  if (res() < 0) return fail(error(make_error_code(errc::timed_out)));
  return static_cast<std::size_t>(res());
}

close_op::close_op(int fd) noexcept : io_op(&close_op::prep), fd_(fd) {}
void close_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  io_uring_prep_close(&sqe, self<close_op>(op).fd_);
}
result<void> close_op::await_resume() const noexcept { return void_result(res(), error({})); }

sleep_op::sleep_op(std::chrono::nanoseconds duration) noexcept : io_op(&sleep_op::prep) {
  detail::to_kernel_timespec(duration, ts_);
}
void sleep_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  io_uring_prep_timeout(&sqe, &self<sleep_op>(op).ts_, 0, 0);
}
result<void> sleep_op::await_resume() const noexcept {
  // -ETIME is a timeout that ran its course: the sleep succeeded.
  if (res() == -ETIME) return {};
  return void_result(res(), error({}));
}

cancel_fd_op::cancel_fd_op(int fd) noexcept : io_op(&cancel_fd_op::prep), fd_(fd) {}
void cancel_fd_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  io_uring_prep_cancel_fd(&sqe, self<cancel_fd_op>(op).fd_,
                          IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL);
}
result<unsigned> cancel_fd_op::await_resume() const noexcept {
  if (res() == -ENOENT) return 0u;  // nothing was in flight
  if (res() < 0) return fail(error({}));
  return static_cast<unsigned>(res());
}

msg_send_op::msg_send_op(int ring_fd, message msg) noexcept
    : io_op(&msg_send_op::prep), ring_fd_(ring_fd), msg_(msg) {}
void msg_send_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  detail::g_messages_sent.fetch_add(1, std::memory_order_release);
  auto& s = self<msg_send_op>(op);
  // The target dispatches on the low bits of user_data: mark it a message.
  const std::uint64_t data = (s.msg_.data << 3) | detail::role_message;
  io_uring_prep_msg_ring(&sqe, s.ring_fd_, static_cast<unsigned>(s.msg_.value), data, 0);
}
result<void> msg_send_op::await_resume() const noexcept { return void_result(res(), error({})); }

}  // namespace conpool::io

namespace conpool {
task<result<void>> sleep_for(std::chrono::nanoseconds d) { co_return co_await io::sleep(d); }
}  // namespace conpool
