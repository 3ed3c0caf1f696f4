// SPDX-License-Identifier: MIT
#pragma once
/// io_uring operations as awaitables: `co_await io::recv(fd, buf)`.
///
/// Each function returns an operation object that lives in the awaiting coroutine's frame; its
/// SQE goes to the kernel with the rest of the loop turn's SQEs, in one io_uring_enter. Every
/// operation yields a `result`: the kernel's errno in the system category, or
/// `std::errc::operation_canceled` when the awaiting fiber was cancelled (a scope, a deadline).
/// An operation started in an already-cancelled fiber fails at once without reaching the kernel.
/// Operations are awaited on the shard that runs the awaiting task.
///
/// Example:
///   std::array<std::byte, 512> buf;
///   result<std::size_t> n = co_await io::recv(fd, buf);
///   result<std::size_t> probe = co_await io::recv(fd, {}, MSG_DONTWAIT);  // health probe:
///   // -EAGAIN (resource_unavailable_try_again) means healthy, 0 means the peer closed or wrote

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <conpool/address.hpp>
#include <conpool/detail/io_op.hpp>
#include <conpool/error.hpp>
#include <conpool/task.hpp>

namespace conpool {

/// An optional relative deadline on one operation (an IORING_OP_LINK_TIMEOUT).
using op_timeout = std::optional<std::chrono::nanoseconds>;

/// A message that another ring posted to this shard with IORING_OP_MSG_RING.
struct message {
  std::uint64_t data = 0;  ///< 61 bits of payload
  std::int32_t value = 0;  ///< 32 bits of payload
};

namespace io {

/// IORING_OP_NOP: a round trip through the kernel and back. Yields nothing.
class nop_op : public detail::io_op {
 public:
  nop_op() noexcept;
  result<void> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
};

/// IORING_OP_SOCKET (socket(2) where the kernel lacks it). Yields the new descriptor
/// (close-on-exec).
class socket_op : public detail::io_op {
 public:
  socket_op(int domain, int type, int protocol) noexcept;
  template <detail::fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    if (sync_) return open_now(h.promise().node_);
    return io_op::await_suspend(h);
  }
  result<int> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  bool open_now(detail::cancel_node* node) noexcept;  // socket(2); never suspends
  int domain_, type_, protocol_;
  int sync_res_ = 0;
  bool sync_ = false;
};

/// IORING_OP_CONNECT, linked to an IORING_OP_LINK_TIMEOUT when `timeout` is set.
/// Errors: the system's (connection_refused, ...), `errc::connect_timeout`.
class connect_op : public detail::io_op {
 public:
  connect_op(int fd, const socket_address& to, op_timeout timeout) noexcept;
  result<void> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  socket_address to_;
  int fd_;
};

/// IORING_OP_ACCEPT on a listening socket. Yields the accepted descriptor (close-on-exec).
class accept_op : public detail::io_op {
 public:
  explicit accept_op(int fd) noexcept;
  result<int> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  int fd_;
};

/// IORING_OP_SEND (MSG_NOSIGNAL is always added). Yields the bytes sent, which may be fewer
/// than asked.
class send_op : public detail::io_op {
 public:
  send_op(int fd, std::span<const std::byte> bytes, int flags, op_timeout timeout) noexcept;
  result<std::size_t> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  const std::byte* data_;
  std::size_t size_;
  int fd_, flags_;
};

/// IORING_OP_RECV. Yields the bytes received, 0 at end of stream. With an empty buffer it is
/// the health probe of DESIGN.md: armed, it completes when the peer sends, closes or resets;
/// with MSG_DONTWAIT it answers at once (resource_unavailable_try_again: healthy).
/// Errors: the system's, `errc::timed_out` when `timeout` passed.
class recv_op : public detail::io_op {
 public:
  /// `poll_first`: wait for the socket to be readable before trying
  /// (IORING_RECVSEND_POLL_FIRST), see `recv_reply`.
  recv_op(int fd, std::span<std::byte> buffer, int flags, op_timeout timeout,
          bool poll_first = false) noexcept;
  result<std::size_t> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  std::byte* data_;
  std::size_t size_;
  int fd_, flags_;
  bool poll_first_ = false;
};

/// IORING_OP_CLOSE.
class close_op : public detail::io_op {
 public:
  explicit close_op(int fd) noexcept;
  result<void> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  int fd_;
};

/// IORING_OP_TIMEOUT: waits `duration`. Yields success when it elapsed,
/// operation_canceled when the fiber was cancelled first.
class sleep_op : public detail::io_op {
 public:
  explicit sleep_op(std::chrono::nanoseconds duration) noexcept;
  result<void> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  __kernel_timespec ts_{};
};

/// IORING_OP_ASYNC_CANCEL of every operation in flight on `fd` (IORING_ASYNC_CANCEL_FD|ALL).
/// Yields how many were cancelled.
class cancel_fd_op : public detail::io_op {
 public:
  explicit cancel_fd_op(int fd) noexcept;
  result<unsigned> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  int fd_;
};

/// IORING_OP_MSG_RING: posts `msg` as a CQE on the ring `ring_fd` (see `shard::ring_fd()`),
/// where `msg_receive` picks it up. Errors: the system's (bad_file_descriptor when the ring
/// is gone, value_too_large when its CQ overflowed).
class msg_send_op : public detail::io_op {
 public:
  msg_send_op(int ring_fd, message msg) noexcept;
  result<void> await_resume() const noexcept;

 private:
  static void prep(io_op&, io_uring_sqe&) noexcept;
  int ring_fd_;
  message msg_;
};

/// Waits for the next MSG_RING message posted to the current shard (FIFO; messages that
/// arrive with no receiver waiting are queued). Errors: operation_canceled.
class msg_receive_op : detail::cancel_hook {
 public:
  msg_receive_op() noexcept;
  msg_receive_op(const msg_receive_op&) = delete;
  msg_receive_op& operator=(const msg_receive_op&) = delete;

  bool await_ready() noexcept;
  template <detail::fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    return park(h, h.promise().node_);
  }
  result<message> await_resume() const noexcept;

 private:
  friend struct inbox_access;
  bool park(std::coroutine_handle<> h, detail::cancel_node* node) noexcept;
  static void on_cancel(detail::cancel_hook* h) noexcept;

  std::coroutine_handle<> waiter_;
  detail::cancel_node* node_ = nullptr;
  msg_receive_op* next_ = nullptr;
  msg_receive_op* prev_ = nullptr;
  message msg_;
  bool cancelled_ = false;
};

/// See `nop_op`.
inline nop_op nop() noexcept { return {}; }
/// See `socket_op`.
inline socket_op socket(int domain, int type, int protocol = 0) noexcept {
  return {domain, type, protocol};
}
/// See `connect_op`.
inline connect_op connect(int fd, const socket_address& to, op_timeout timeout = {}) noexcept {
  return {fd, to, timeout};
}
/// See `accept_op`.
inline accept_op accept(int listen_fd) noexcept { return accept_op{listen_fd}; }
/// See `send_op`.
inline send_op send(int fd, std::span<const std::byte> bytes, int flags = 0,
                    op_timeout timeout = {}) noexcept {
  return {fd, bytes, flags, timeout};
}
/// See `recv_op`.
inline recv_op recv(int fd, std::span<std::byte> buffer, int flags = 0,
                    op_timeout timeout = {}) noexcept {
  return {fd, buffer, flags, timeout};
}
/// A `recv` that waits for readability before trying: for a reply just asked for, which is
/// rarely there yet, it skips a receive bound to fail (IORING_RECVSEND_POLL_FIRST).
inline recv_op recv_reply(int fd, std::span<std::byte> buffer, op_timeout timeout = {}) noexcept {
  return {fd, buffer, 0, timeout, true};
}
/// See `close_op`.
inline close_op close(int fd) noexcept { return close_op{fd}; }
/// See `cancel_fd_op`.
inline cancel_fd_op cancel_fd(int fd) noexcept { return cancel_fd_op{fd}; }
/// See `msg_send_op`. `msg.data` must fit in 61 bits.
inline msg_send_op msg_send(int ring_fd, message msg) noexcept { return {ring_fd, msg}; }
/// See `msg_receive_op`.
inline msg_receive_op msg_receive() noexcept { return {}; }
/// See `sleep_op`.
inline sleep_op sleep(std::chrono::nanoseconds d) noexcept { return sleep_op{d}; }

}  // namespace io

/// Waits `d` on the shard's ring (an io_uring timeout, no thread blocks). Yields success, or
/// operation_canceled when the fiber is cancelled first: check it in loops. A task (unlike
/// `io::sleep`), so it composes with `with_timeout` and `when_all`.
task<result<void>> sleep_for(std::chrono::nanoseconds d);

}  // namespace conpool
