// SPDX-License-Identifier: MIT
#pragma once
// Shared by the tests: fd counting, ring modes, an io_uring echo server, loopback helpers.

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

#include <conpool/conpool.hpp>

namespace conpool::testing {

/// Open descriptors of this process (entries of /proc/self/fd, less the one used to list it).
inline int fd_count() {
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  int n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

/// Checks at scope exit that no descriptor leaked since construction.
struct fd_leak_check {
  int before = fd_count();
  ~fd_leak_check() { CHECK_MESSAGE(fd_count() == before, "descriptors leaked"); }
};

/// The ring set-ups every I/O test runs under: plain, and SINGLE_ISSUER|DEFER_TASKRUN where the
/// kernel has it (otherwise that run is reported and skipped).
inline std::vector<ring_mode> ring_modes() {
  std::vector<ring_mode> modes{ring_mode::plain};
  if (shard::kernel_has_defer_taskrun()) {
    modes.push_back(ring_mode::defer_taskrun);
  } else {
    MESSAGE("kernel lacks IORING_SETUP_DEFER_TASKRUN: that ring set-up is skipped");
  }
  return modes;
}

inline const char* name(ring_mode m) {
  switch (m) {
    case ring_mode::plain: return "plain";
    case ring_mode::defer_taskrun: return "defer_taskrun";
    case ring_mode::automatic: return "automatic";
  }
  return "?";
}

/// Runs `body(mode)` once per ring set-up, each as its own doctest SUBCASE.
template <class F>
void for_each_ring_mode(F&& body) {
  for (ring_mode m : ring_modes()) {
    SUBCASE(name(m)) { body(m); }
  }
}

/// Tasks of different shards take turns: shard `to` is told to go on (a MSG_RING message).
inline task<void> tell(runtime& rt, unsigned to, std::uint64_t what = 0) {
  REQUIRE(co_await io::msg_send(rt.ring_fd(to), {.data = what}));
}
/// What this shard was told.
inline task<std::uint64_t> heard() {
  result<message> m = co_await io::msg_receive();
  REQUIRE(m);
  co_return m->data;
}
/// A few loop turns: tasks spawned before this have run up to their first wait.
inline task<void> turns() {
  for (int i = 0; i < 3; ++i) (void)co_await io::nop();
}

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// Echoes everything it reads back until the peer closes; returns the bytes echoed.
inline task<std::size_t> echo(flow f) {
  std::vector<std::byte> buf(64 * 1024);
  std::size_t total = 0;
  for (;;) {
    result<std::size_t> n = co_await f.read_some(buf);
    if (!n || *n == 0) break;
    if (!co_await f.write_all(std::span(buf.data(), *n))) break;
    total += *n;
  }
  co_await f.close();
  co_return total;
}

/// Accepts `connections` connections on `l` and echoes each concurrently; returns the bytes
/// echoed in all.
inline task<std::size_t> echo_server(listener& l, int connections) {
  std::size_t total = 0;
  co_await scoped([&](scope& s) -> task<void> {
    for (int i = 0; i < connections; ++i) {
      result<flow> f = co_await l.accept();
      REQUIRE(f.has_value());
      s.spawn([](flow f, std::size_t& total) -> task<void> {
        total += co_await echo(std::move(f));
      }(std::move(*f), total));
    }
    co_await s.join();
  });
  co_return total;
}

/// A socket bound to a loopback port without listening: connecting to it is refused.
struct refusing_port {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socket_address address;
  refusing_port() {
    const socket_address any = socket_address::loopback(0);
    REQUIRE(::bind(fd, any.data(), any.size()) == 0);
    address = *socket_address::local_of(fd);
  }
  ~refusing_port() { ::close(fd); }
};

/// A listener with backlog 0 holding one finished, never accepted handshake: the kernel drops
/// further SYNs, so a connect to it hangs until its timeout.
struct full_backlog {
  listener l = *listener::open(socket_address::loopback(0), 0);
  int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socket_address address = l.address();
  full_backlog() { REQUIRE(::connect(filler, address.data(), address.size()) == 0); }
  ~full_backlog() { ::close(filler); }
  endpoint where() const { return {address.host(), address.port()}; }
};

}  // namespace conpool::testing
