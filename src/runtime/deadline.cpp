// SPDX-License-Identifier: MIT
#include <conpool/detail/deadline.hpp>

#include <cerrno>

#include "shard_core.hpp"

namespace conpool::detail {

deadline::deadline(cancel_node* parent, std::chrono::nanoseconds after) noexcept
    : completion{&deadline::on_cqe}, node_(parent) {
  to_kernel_timespec(after, ts_);
}

void deadline::arm() noexcept {
  shard_core& s = shard_core::current();
  io_uring_sqe* sqe = s.sqe();
  io_uring_prep_timeout(sqe, &ts_, 0, 0);
  io_uring_sqe_set_data64(sqe, user_data(this, role_main));
  pending_ = 1;
  s.expect(1);
}

void deadline::on_cqe(completion* c, unsigned role, int res, unsigned) noexcept {
  auto* d = static_cast<deadline*>(c);
  // Expiry racing the removal: the task has finished already, so it does not count.
  if (role == role_main && res == -ETIME && !d->removing_) {
    d->fired_ = true;
    d->node_.cancel();
  }
  if (--d->pending_ == 0 && d->waiter_) shard_core::current().schedule(d->waiter_);
}

void deadline::disarm(std::coroutine_handle<> h) noexcept {
  waiter_ = h;
  if (removing_) return;
  removing_ = true;
  shard_core& s = shard_core::current();
  io_uring_sqe* sqe = s.sqe();
  io_uring_prep_timeout_remove(sqe, user_data(this, role_main), 0);
  io_uring_sqe_set_data64(sqe, user_data(this, role_cancel));
  ++pending_;
  s.expect(1);
}

}  // namespace conpool::detail
