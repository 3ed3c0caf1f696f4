// SPDX-License-Identifier: MIT
#include "connect_chain.hpp"

#include <liburing.h>

#include <algorithm>

namespace conpool::detail {
namespace {

// liburing 2.3 predates socket commands (Linux 6.7; liburing 2.5's io_uring_prep_cmd_sock):
// the command's number and where its fields sit in the SQE, from the kernel's uapi.
constexpr unsigned socket_op_setsockopt = 3;  // SOCKET_URING_OP_SETSOCKOPT

void prep_setsockopt(io_uring_sqe& sqe, int fd, const int_option& o) noexcept {
  io_uring_prep_rw(IORING_OP_URING_CMD, &sqe, fd, nullptr, 0, 0);
  sqe.cmd_op = socket_op_setsockopt;                       // off's low half
  sqe.addr = static_cast<std::uint32_t>(o.level) |         // level, optname share addr
             (static_cast<std::uint64_t>(static_cast<std::uint32_t>(o.name)) << 32);
  sqe.file_index = sizeof o.value;                         // optlen
  sqe.addr3 = reinterpret_cast<std::uintptr_t>(&o.value);  // optval
}

}  // namespace

connect_chain_op::connect_chain_op(int fd, const socket_address& to, op_timeout timeout,
                                   std::span<const int_option> options) noexcept
    : io_op(&connect_chain_op::prep, timeout), to_(to), fd_(fd) {
  const std::size_t n = std::min<std::size_t>(options.size(), max_chain_options);
  std::copy_n(options.begin(), n, options_);
  lead_with(&connect_chain_op::lead, static_cast<unsigned>(n));
}

void connect_chain_op::lead(io_op& op, unsigned i, io_uring_sqe& sqe) noexcept {
  auto& self = static_cast<connect_chain_op&>(op);
  prep_setsockopt(sqe, self.fd_, self.options_[i]);
}

void connect_chain_op::prep(io_op& op, io_uring_sqe& sqe) noexcept {
  auto& self = static_cast<connect_chain_op&>(op);
  io_uring_prep_connect(&sqe, self.fd_, self.to_.data(), self.to_.size());
}

result<void> connect_chain_op::await_resume() const noexcept {
  if (res() >= 0) return {};
  return fail(error(make_error_code(errc::connect_timeout)));
}

}  // namespace conpool::detail
