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
