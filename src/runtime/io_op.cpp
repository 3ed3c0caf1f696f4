// SPDX-License-Identifier: MIT
#include <conpool/detail/io_op.hpp>

#include <cerrno>

#include "shard_core.hpp"

namespace conpool::detail {

void to_kernel_timespec(std::chrono::nanoseconds d, __kernel_timespec& ts) noexcept {
  const auto ns = d.count() < 0 ? 0 : d.count();
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
}

io_op::io_op(prep_fn prep) noexcept
    : completion{&io_op::on_cqe}, cancel_hook{&io_op::on_cancel}, prep_(prep) {}

io_op::io_op(prep_fn prep, std::optional<std::chrono::nanoseconds> link_timeout) noexcept
    : io_op(prep) {
  if (link_timeout) {
    has_link_timeout_ = true;
    to_kernel_timespec(*link_timeout, link_timeout_);
  }
}

bool io_op::start(std::coroutine_handle<> h, cancel_node* node) noexcept {
  if (node != nullptr && node->cancelled()) {
    res_ = -ECANCELED;
    cancel_requested_ = true;
    return false;
  }
  shard_core& s = shard_core::current();
  const unsigned batch = lead_count_ + (has_link_timeout_ ? 2u : 1u);
  for (unsigned i = 0; i < lead_count_; ++i) {
    io_uring_sqe* lead = s.sqe(batch - i);  // the first call makes room for the whole batch
    lead_(*this, i, *lead);
    lead->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(lead, user_data(this, role_aux));
  }
  io_uring_sqe* sqe = s.sqe(batch - lead_count_);
  prep_(*this, *sqe);
  io_uring_sqe_set_data64(sqe, user_data(this, role_main));
  pending_ = static_cast<std::uint8_t>(lead_count_ + 1);
  if (has_link_timeout_) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* link = s.sqe(1);  // room was reserved: same batch, right after
    io_uring_prep_link_timeout(link, &link_timeout_, 0);
    io_uring_sqe_set_data64(link, user_data(this, role_link));
    ++pending_;
  }
  s.expect(pending_);
  waiter_ = h;
  node_ = node;
  if (node != nullptr) node->park(this);
  return true;
}

void io_op::on_cqe(completion* c, unsigned role, int res, unsigned) noexcept {
  auto* op = static_cast<io_op*>(c);
  if (role == role_main) {
    op->res_ = res;
    op->main_done_ = true;
    if (op->node_ != nullptr) op->node_->unpark(op);
  } else if (role == role_link && res == -ETIME) {
    op->timed_out_ = true;
  } else if (role == role_aux && res < 0 && res != -ECANCELED && op->lead_res_ == 0) {
    op->lead_res_ = res;
  }
  if (--op->pending_ == 0) op->finish();
}

void io_op::finish() noexcept { shard_core::current().schedule(waiter_); }

void io_op::on_cancel(cancel_hook* h) noexcept {
  auto* op = static_cast<io_op*>(h);
  if (op->main_done_ || op->cancel_requested_) return;
  op->cancel_requested_ = true;
  shard_core& s = shard_core::current();
  io_uring_sqe* sqe = s.sqe(1);
  io_uring_prep_cancel64(sqe, user_data(op, role_main), 0);
  io_uring_sqe_set_data64(sqe, user_data(op, role_cancel));
  ++op->pending_;
  s.expect(1);
}

std::error_code io_op::lead_error() const noexcept {
  return lead_res_ == 0 ? std::error_code{} : errno_error(lead_res_);
}

std::error_code io_op::error(std::error_code on_timeout) const noexcept {
  if (res_ >= 0) return {};
  if (timed_out_ && !cancel_requested_) return on_timeout;
  return errno_error(res_);
}

}  // namespace conpool::detail
