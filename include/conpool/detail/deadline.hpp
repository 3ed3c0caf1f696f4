// SPDX-License-Identifier: MIT
#pragma once
/// Internal: the timer behind `with_timeout`. An IORING_OP_TIMEOUT whose expiry cancels a
/// cancellation node (and so whatever the timed task waits on); disarming it waits for its
/// CQEs, so the timer never outlives the frame it lives in.

#include <linux/time_types.h>

#include <chrono>
#include <coroutine>
#include <cstdint>

#include <conpool/detail/cancel_node.hpp>
#include <conpool/detail/io_op.hpp>

namespace conpool::detail {

class deadline : completion {
 public:
  /// A deadline `after` from now over a new node under `parent`; not armed yet.
  deadline(cancel_node* parent, std::chrono::nanoseconds after) noexcept;
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  /// Submits the timer (from the shard's thread).
  void arm() noexcept;
  /// The node that expiry cancels: bind the timed task to it.
  cancel_node& node() noexcept { return node_; }
  /// True when the timer expired (before being disarmed).
  [[nodiscard]] bool fired() const noexcept { return fired_; }

  struct disarm_awaiter {
    deadline& d;
    bool await_ready() const noexcept { return d.pending_ == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { d.disarm(h); }
    void await_resume() const noexcept {}
  };
  /// Removes the timer if still pending and waits until all its CQEs have arrived.
  /// Not cancellable: it only ever waits for the kernel to acknowledge.
  disarm_awaiter disarm() noexcept { return {*this}; }

 private:
  static void on_cqe(completion* c, unsigned role, int res, unsigned flags) noexcept;
  void disarm(std::coroutine_handle<> h) noexcept;

  cancel_node node_;
  __kernel_timespec ts_{};
  std::coroutine_handle<> waiter_;
  std::uint8_t pending_ = 0;
  bool fired_ = false;
  bool removing_ = false;
};

}  // namespace conpool::detail
