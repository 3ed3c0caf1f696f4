// SPDX-License-Identifier: MIT
#pragma once
// The open's I/O in one batch of linked SQEs: the socket's options as SOCKET_URING_OP_SETSOCKOPT
// commands, then IORING_OP_CONNECT, then its IORING_OP_LINK_TIMEOUT. No setsockopt syscall, no
// separate timer to arm and remove.
//
// The socket itself comes first from a plain socket(2): a linked chain needs the descriptor when
// the batch is prepared, and only a direct descriptor (a fixed-file slot) would give that, which
// every later read, write, hand-off and user of `native_handle()` would then have to know about.

#include <span>

#include <conpool/address.hpp>
#include <conpool/detail/io_op.hpp>
#include <conpool/error.hpp>
#include <conpool/io.hpp>

namespace conpool::detail {

/// One integer socket option.
struct int_option {
  int level = 0;
  int name = 0;
  int value = 0;
};

/// The most options a chain carries (TCP_NODELAY, keepalive's four, TCP_USER_TIMEOUT).
inline constexpr unsigned max_chain_options = 6;

class connect_chain_op : public io_op {
 public:
  /// Connects `fd` to `to` after setting `options` (at most `max_chain_options`), bounded by
  /// `timeout` when set. The shard must take socket commands (`shard_core::socket_commands`).
  connect_chain_op(int fd, const socket_address& to, op_timeout timeout,
                   std::span<const int_option> options) noexcept;
  /// Errors: connect's (connection_refused, ...), `errc::connect_timeout`, operation_canceled.
  /// When an option's command failed, `lead_error()` says how, and nothing was connected.
  result<void> await_resume() const noexcept;
  using io_op::lead_error;

 private:
  static void prep(io_op& op, io_uring_sqe& sqe) noexcept;
  static void lead(io_op& op, unsigned i, io_uring_sqe& sqe) noexcept;

  socket_address to_;
  int fd_;
  int_option options_[max_chain_options];  // the commands point at these values
};

}  // namespace conpool::detail
