// SPDX-License-Identifier: MIT
#pragma once
// The shard side of the frame allocator (promise_base.hpp has the task side).

namespace conpool::detail {

/// Gives the calling thread a frame heap of its own (called by the shard on its thread).
void frame_heap_attach();
/// Retires the thread's frame heap; frames still alive stay valid (called by ~shard).
void frame_heap_detach() noexcept;
/// True when frames come from mimalloc heaps (libmimalloc.so.2 loaded privately), false when
/// from the per-thread free list or (under sanitizers) the global heap.
bool frames_from_mimalloc() noexcept;

}  // namespace conpool::detail
