// SPDX-License-Identifier: MIT
// A program that uses conpool, built three ways (Meson subproject, pkg-config, CMake): runs a
// task on a shard (an echo over loopback through conpool's flow and listener), then checks that
// it kept its own allocator (malloc from libc, an impossible `new` throws std::bad_alloc).
#include <conpool/conpool.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <new>
#include <string>

using namespace conpool;

static task<int> round_trip() {
  result<listener> l = listener::open(socket_address::loopback(0));
  if (!l) co_return 1;
  result<flow> client = co_await connect(l->address(), std::chrono::seconds(1));
  result<flow> server = co_await l->accept();
  if (!client || !server) co_return 2;
  if (!co_await client->write_all("hello")) co_return 3;
  char buf[5];
  if (!co_await server->read_exact(std::as_writable_bytes(std::span(buf)))) co_return 4;
  co_return std::string(buf, 5) == "hello" ? 0 : 5;
}

// 0 when the program's malloc is libc's and `new` reports exhaustion as C++ says.
static int own_allocator() {
  Dl_info info{};
  if (::dladdr(::dlsym(RTLD_DEFAULT, "malloc"), &info) == 0) return 10;
  if (std::string(info.dli_fname).find("libc.so") == std::string::npos) {
    std::printf("consumer: malloc comes from %s, not libc\n", info.dli_fname);
    return 11;
  }
  try {
    (void)::operator new(std::size_t{1} << 62);
    return 12;
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

int main() {
  shard s;
  int rc = s.run(round_trip());
  if (rc == 0) rc = own_allocator();
  std::printf("consumer: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
