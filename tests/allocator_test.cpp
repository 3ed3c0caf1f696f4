// SPDX-License-Identifier: MIT
// conpool takes its coroutine frames from mimalloc heaps where it can, yet a program that links
// conpool keeps its own allocator: malloc, free and operator new stay libc's and libstdc++'s,
// and a `new` that cannot be met throws std::bad_alloc instead of aborting.
#include <dlfcn.h>

#include <cstddef>
#include <new>
#include <string>

#include "support/support.hpp"

using namespace conpool;

namespace {

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// The file the program's own lookup of `symbol` resolves to.
std::string defined_in(const char* symbol) {
  void* address = ::dlsym(RTLD_DEFAULT, symbol);
  REQUIRE(address != nullptr);
  Dl_info info{};
  REQUIRE(::dladdr(address, &info) != 0);
  return info.dli_fname;
}
#endif

task<int> leaf(int i) { co_return i; }
task<int> frames() {
  int n = 0;
  for (int i = 0; i < 1000; ++i) n += co_await leaf(1);
  co_return n;
}

}  // namespace

TEST_CASE("allocator: the program keeps its own malloc and new; frames come from mimalloc") {
  shard s;
  CHECK(s.run(frames()) == 1000);  // frames allocated: mimalloc is loaded by now, if it is
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (Under a sanitizer, its own interceptors are the program's malloc and new.)
  CHECK(defined_in("malloc").find("libc.so") != std::string::npos);
  CHECK(defined_in("free").find("libc.so") != std::string::npos);
  CHECK(defined_in("_Znwm").find("libstdc++") != std::string::npos);  // operator new(size_t)
  CHECK(defined_in("_ZdlPv").find("libstdc++") != std::string::npos);  // operator delete(void*)
  // (A sanitizer's own `new` aborts on an impossible size, by design.)
  CHECK_THROWS_AS((void)::operator new(std::size_t{1} << 62), std::bad_alloc);
#endif
#if CONPOOL_TEST_FRAMES_FROM_MIMALLOC
  // Loaded, privately: the library is in the process, its symbols are not in its scope.
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
  CHECK(lib != nullptr);
  if (lib != nullptr) ::dlclose(lib);
  CHECK(::dlsym(RTLD_DEFAULT, "mi_heap_new") == nullptr);
#endif
}
