// SPDX-License-Identifier: MIT
#pragma once
/// Internal: what every conpool coroutine promise has: the frame allocator, the continuation
/// and the fiber's cancellation node.

#include <coroutine>
#include <cstddef>

#include <conpool/detail/cancel_node.hpp>

namespace conpool::detail {

/// Frame memory from the current shard's allocator (mimalloc heap per shard, or a per-thread
/// free list by size class); the global heap where no shard runs on this thread.
/// Never returns null: throws std::bad_alloc.
void* frame_allocate(std::size_t size);
/// Returns a frame from `frame_allocate` (on any thread).
void frame_deallocate(void* frame, std::size_t size) noexcept;

/// Symmetric transfer that never relies on a tail call. An awaiter returns the coroutine to run
/// next (`transfer`); g++ makes that a tail call only when optimising without sanitizers, and
/// otherwise each transfer nests a native frame. So every 64th transfer in a row goes through
/// the shard's resume loop instead (`resume_chain`): the awaiter stores the coroutine in
/// `t_resume_next` and suspends, the stack unwinds to the loop, and the loop resumes it. A chain
/// of awaits (nested, or a million tasks completing at once) then stays within 64 frames at
/// -O0 and costs one thread-local increment a transfer at -O2.
extern thread_local std::coroutine_handle<> t_resume_next
    __attribute__((tls_model("initial-exec")));
extern thread_local unsigned t_transfers __attribute__((tls_model("initial-exec")));

/// What an `await_suspend` returns to hand control to `h`.
inline std::coroutine_handle<> transfer(std::coroutine_handle<> h) noexcept {
  if (++t_transfers < 64) [[likely]] return h;
  t_resume_next = h;
  return std::noop_coroutine();
}

/// Resumes `h`, then whatever the transfers it made left for the loop.
inline void resume_chain(std::coroutine_handle<> h) {
  while (h) {
    t_transfers = 0;
    h.resume();
    h = t_resume_next;
    t_resume_next = nullptr;
  }
}

struct promise_base {
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    frame_deallocate(frame, size);
  }

  /// Who resumes when this coroutine finishes (noop for a root).
  std::coroutine_handle<> continuation_ = std::noop_coroutine();
  /// The fiber this coroutine runs in; set by whoever starts or awaits it.
  cancel_node* node_ = nullptr;
};

/// A promise type conpool's operations can read the fiber's node from.
template <class P>
concept fiber_promise = requires(P& p) {
  { p.node_ } -> std::convertible_to<cancel_node*>;
};

/// `co_await current_node{}` gives the awaiting fiber's cancellation node without suspending.
struct current_node {
  cancel_node* node = nullptr;
  bool await_ready() const noexcept { return false; }
  template <fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    node = h.promise().node_;
    return false;
  }
  cancel_node* await_resume() const noexcept { return node; }
};

}  // namespace conpool::detail
