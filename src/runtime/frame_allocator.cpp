// SPDX-License-Identifier: MIT
// Coroutine frames: a mimalloc heap per shard where mimalloc can be had; otherwise a per-thread
// free list by size class. Under AddressSanitizer frames go straight to the global heap so that
// a use after free is caught, not recycled.
//
// mimalloc is loaded privately (dlopen with RTLD_LOCAL), never linked: Debian's libmimalloc.so
// exports malloc, free and operator new, and linking it would replace the host program's
// allocator process wide (and make an impossible `new` abort instead of throwing). Loaded
// locally, its symbols stay out of the program's scope: conpool takes frames from its heaps and
// the host keeps its own allocator. Where libmimalloc.so.2 is absent, the free list serves.
// A host that wants mimalloc for the whole process links it itself (or LD_PRELOADs it); the
// dlopen then finds that same library.
#include <conpool_config.h>

#include <cstddef>
#include <new>

#include <conpool/detail/promise_base.hpp>

#include "frame_heap.hpp"
#include "shard_core.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONPOOL_FRAMES_FROM_GLOBAL_HEAP 1
#elif CONPOOL_HAVE_MIMALLOC
#include <dlfcn.h>
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
bool frames_from_mimalloc() noexcept { return false; }

#else

namespace {

// ---- the free list: classes of 64 bytes up to 2 KiB; each keeps at most `cap` frames ---------
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

void* list_allocate(std::size_t size) {
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

void list_deallocate(void* frame, std::size_t size) noexcept {
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


// ---- mimalloc, loaded privately -----------------------------------------------------------------

struct mimalloc_api {
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  decltype(&mi_heap_new) heap_new = nullptr;
  decltype(&mi_heap_malloc) heap_malloc = nullptr;
  decltype(&mi_malloc) malloc = nullptr;
  decltype(&mi_free) free = nullptr;
  decltype(&mi_heap_delete) heap_delete = nullptr;
#endif
  bool loaded = false;
};

mimalloc_api load_mimalloc() noexcept {
  mimalloc_api api;
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return api;  // kept loaded for the process's life: frames may outlive all
  api.heap_new = reinterpret_cast<decltype(api.heap_new)>(::dlsym(lib, "mi_heap_new"));
  api.heap_malloc = reinterpret_cast<decltype(api.heap_malloc)>(::dlsym(lib, "mi_heap_malloc"));
  api.malloc = reinterpret_cast<decltype(api.malloc)>(::dlsym(lib, "mi_malloc"));
  api.free = reinterpret_cast<decltype(api.free)>(::dlsym(lib, "mi_free"));
  api.heap_delete = reinterpret_cast<decltype(api.heap_delete)>(::dlsym(lib, "mi_heap_delete"));
  api.loaded = api.heap_new && api.heap_malloc && api.malloc && api.free && api.heap_delete;
#endif
  return api;
}

// Decided once, before the first frame: every frame of the process comes from the same place.
const mimalloc_api& mimalloc() noexcept {
  static const mimalloc_api api = load_mimalloc();
  return api;
}

#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
thread_local mi_heap_t* t_heap __attribute__((tls_model("initial-exec"))) = nullptr;
#endif

}  // namespace

bool frames_from_mimalloc() noexcept { return mimalloc().loaded; }

void* frame_allocate(std::size_t size) {
  count_frame();
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  if (const mimalloc_api& mi = mimalloc(); mi.loaded) {
    void* p = t_heap != nullptr ? mi.heap_malloc(t_heap, size) : mi.malloc(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
#endif
  return list_allocate(size);
}

void frame_deallocate(void* frame, std::size_t size) noexcept {
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  // mi_free takes a block of any heap, from any thread.
  if (const mimalloc_api& mi = mimalloc(); mi.loaded) return mi.free(frame);
#endif
  list_deallocate(frame, size);
}

void frame_heap_attach() {
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  if (const mimalloc_api& mi = mimalloc(); mi.loaded) t_heap = mi.heap_new();
#endif
}

void frame_heap_detach() noexcept {
#if defined(CONPOOL_FRAMES_FROM_MIMALLOC)
  // Frames still alive migrate to the thread's default heap and stay valid.
  if (t_heap != nullptr) mimalloc().heap_delete(t_heap);
  t_heap = nullptr;
#endif
}

#endif

}  // namespace conpool::detail
