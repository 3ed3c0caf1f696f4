// SPDX-License-Identifier: MIT
#pragma once
/// Internal: the base of every io_uring operation object.
///
/// An operation is immovable: its address is the `user_data` of its SQEs, with the role of
/// the SQE in the three low bits (the op itself, its linked timeout, its cancel). It completes,
/// and resumes its coroutine through the shard's ready queue, only once every CQE it is owed
/// has arrived, so a cancelled read never leaves the kernel writing into freed memory.

#include <linux/time_types.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <system_error>

#include <conpool/detail/cancel_node.hpp>
#include <conpool/detail/promise_base.hpp>

struct io_uring_sqe;

namespace conpool::detail {

/// What a CQE's user_data points at (with the SQE's role in the three low bits).
struct completion {
  void (*on_cqe)(completion*, unsigned role, int res, unsigned flags) noexcept;
};

/// Roles of the SQEs of one operation (the low bits of user_data).
enum sqe_role : unsigned {
  role_main = 0,     ///< the operation itself
  role_link = 1,     ///< its IORING_OP_LINK_TIMEOUT
  role_cancel = 2,   ///< an IORING_OP_ASYNC_CANCEL aimed at it
  role_message = 3,  ///< a MSG_RING message from another ring (no SQE of ours)
  role_wake = 4,     ///< a MSG_RING wake-up for a completion of ours, from a helper thread
  role_aux = 5,      ///< another SQE of the same owner (a TLS close_notify before its close, a
                     ///< lead SQE linked ahead of an operation)
  role_post = 6,     ///< a post between shards of a group (MSG_RING); res < 0: it failed to leave
  role_mask = 7,
};

inline std::uint64_t user_data(const completion* c, sqe_role role) noexcept {
  return reinterpret_cast<std::uintptr_t>(c) | role;
}

/// Fills `ts` with a relative duration (negative durations count as zero).
void to_kernel_timespec(std::chrono::nanoseconds d, __kernel_timespec& ts) noexcept;

class io_op : protected completion, protected cancel_hook {
 public:
  io_op(const io_op&) = delete;
  io_op& operator=(const io_op&) = delete;

  bool await_ready() const noexcept { return false; }
  template <fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    return start(h, h.promise().node_);
  }

 protected:
  /// Fills the SQE of the operation (its user_data and link flag are set by the base).
  using prep_fn = void (*)(io_op&, io_uring_sqe&) noexcept;

  explicit io_op(prep_fn prep) noexcept;
  io_op(prep_fn prep, std::optional<std::chrono::nanoseconds> link_timeout) noexcept;

  /// Fills lead SQE `i`: one of `count` linked ahead of the operation's own in the same batch
  /// (the kernel runs them in order first). Their CQEs are owed like the operation's (a chain
  /// that breaks posts every CQE, the rest with ECANCELED); a failed lead cancels the
  /// operation: `lead_error()`.
  using lead_fn = void (*)(io_op&, unsigned i, io_uring_sqe&) noexcept;
  void lead_with(lead_fn lead, unsigned count) noexcept {
    lead_ = lead;
    lead_count_ = static_cast<std::uint8_t>(count);
  }
  /// The error of the first lead SQE that failed (so the kernel cancelled the operation), or
  /// none.
  [[nodiscard]] std::error_code lead_error() const noexcept;

  /// The operation's CQE result: >= 0, or -errno.
  [[nodiscard]] int res() const noexcept { return res_; }
  /// The error of a failed operation: operation_canceled when its fiber was cancelled,
  /// `on_timeout` when its linked timeout fired, else the errno.
  [[nodiscard]] std::error_code error(std::error_code on_timeout) const noexcept;

 private:
  bool start(std::coroutine_handle<> h, cancel_node* node) noexcept;
  static void on_cqe(completion* c, unsigned role, int res, unsigned flags) noexcept;
  static void on_cancel(cancel_hook* h) noexcept;
  void finish() noexcept;

  prep_fn prep_;
  lead_fn lead_ = nullptr;
  std::coroutine_handle<> waiter_;
  cancel_node* node_ = nullptr;
  __kernel_timespec link_timeout_{};
  int res_ = 0;
  int lead_res_ = 0;  // the first failed lead's result
  std::uint8_t pending_ = 0;  // CQEs still owed
  std::uint8_t lead_count_ = 0;
  bool has_link_timeout_ = false;
  bool timed_out_ = false;
  bool cancel_requested_ = false;
  bool main_done_ = false;
};

}  // namespace conpool::detail
