// SPDX-License-Identifier: MIT
// Coroutine frames: a mimalloc heap per shard where mimalloc is built in; otherwise a per-thread
// free list by size class. Under AddressSanitizer frames go straight to the global heap so that
// a use after free is caught, not recycled.
#include <conpool_config.h>

#include <cstddef>
#include <new>

#include <conpool/detail/promise_base.hpp>

#include "frame_heap.hpp"
#include "shard_core.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONPOOL_FRAMES_FROM_GLOBAL_HEAP 1
#elif CONPOOL_HAVE_MIMALLOC
#include <mimalloc.h>
#define CONPOOL_FRAMES_FROM_MIMALLOC 1
#endif

namespace conpool::detail {
namespace {
// For the benchmarks' allocation counts (one increment; frames are not the hit path).
inline void count_frame() noexcept {
  if (t_current_core != nullptr) t_current_core->count_frame();
}
}  // namespace

#if defined(CONPOOL_FRAMES_FROM_GLOBAL_HEAP)

void* frame_allocate(std::size_t size) {
  count_frame();
  return ::operator new(size);
}
void frame_deallocate(void* frame, std::size_t size) noexcept { ::operator delete(frame, size); }
void frame_heap_attach() {}
void frame_heap_detach() noexcept {}

#elif defined(CONPOOL_FRAMES_FROM_MIMALLOC)

namespace {
thread_local mi_heap_t* t_heap __attribute__((tls_model("initial-exec"))) = nullptr;
}

void* frame_allocate(std::size_t size) {
  count_frame();
  void* p = t_heap != nullptr ? mi_heap_malloc(t_heap, size) : mi_malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// mi_free takes a block of any heap, from any thread.
void frame_deallocate(void* frame, std::size_t) noexcept { mi_free(frame); }
void frame_heap_attach() { t_heap = mi_heap_new(); }
void frame_heap_detach() noexcept {
  // Frames still alive migrate to the thread's default heap and stay valid.
  if (t_heap != nullptr) mi_heap_delete(t_heap);
  t_heap = nullptr;
}

#else

namespace {

// Classes of 64 bytes up to 2 KiB; each keeps at most `cap` frames for reuse.
constexpr std::size_t granule = 64;
constexpr std::size_t classes = 32;
constexpr std::size_t cap = 256;

struct free_frame {
  free_frame* next;
};

struct frame_cache {
  free_frame* head[classes] = {};
  std::size_t count[classes] = {};
  ~frame_cache() {
    for (std::size_t c = 0; c < classes; ++c) {
      while (free_frame* f = head[c]) {
        head[c] = f->next;
        ::operator delete(f, (c + 1) * granule);
      }
    }
  }
};

thread_local frame_cache t_cache;

}  // namespace

void* frame_allocate(std::size_t size) {
  count_frame();
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c < classes) {
    if (free_frame* f = t_cache.head[c]) {
      t_cache.head[c] = f->next;
      --t_cache.count[c];
      return f;
    }
    return ::operator new((c + 1) * granule);
  }
  return ::operator new(size);
}

void frame_deallocate(void* frame, std::size_t size) noexcept {
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c >= classes) {
    ::operator delete(frame, size);
    return;
  }
  if (t_cache.count[c] == cap) {
    ::operator delete(frame, (c + 1) * granule);
    return;
  }
  auto* f = static_cast<free_frame*>(frame);
  f->next = t_cache.head[c];
  t_cache.head[c] = f;
  ++t_cache.count[c];
}

void frame_heap_attach() {}
void frame_heap_detach() noexcept {}

#endif

}  // namespace conpool::detail
