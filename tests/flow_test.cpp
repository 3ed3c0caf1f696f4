// SPDX-License-Identifier: MIT
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <numeric>
#include <thread>
#include <vector>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::bytes;
using testing::fd_leak_check;
using testing::for_each_ring_mode;

static_assert(std::is_nothrow_move_constructible_v<flow>);
static_assert(!std::is_copy_constructible_v<flow>);

namespace {

std::vector<std::byte> pattern(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  return v;
}

// Writes `out` and reads the echo back concurrently (a 1 MiB write cannot finish before the
// echo is drained), reading `read_size` bytes at a time. Returns the bytes read back.
task<std::vector<std::byte>> round_trip(flow& f, const std::vector<std::byte>& out,
                                        std::size_t read_size) {
  std::vector<std::byte> in;
  in.reserve(out.size());
  co_await scoped([&](scope& s) -> task<void> {
    s.spawn([](flow& f, const std::vector<std::byte>& out) -> task<void> {
      REQUIRE(co_await f.write_all(out));
    }(f, out));
    std::vector<std::byte> buf(read_size);
    while (in.size() < out.size()) {
      result<std::size_t> n = co_await f.read_some(buf);
      if (!n || *n == 0) FAIL("echo stopped after ", in.size(), " bytes");
      in.insert(in.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    co_await s.join();
  });
  co_return in;
}

}  // namespace

TEST_CASE("flow: echo on one shard: short messages, 1-byte reads, a 1 MiB write") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    std::size_t echoed = s.run([]() -> task<std::size_t> {
      result<listener> l = listener::open(socket_address::loopback(0));
      REQUIRE(l.has_value());
      std::size_t echoed = 0;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](listener& l, std::size_t& echoed) -> task<void> {
          echoed = co_await testing::echo_server(l, 1);
        }(*l, echoed));
        result<flow> f = co_await connect(l->address(), 1s);
        REQUIRE(f.has_value());
        for (int i = 0; i < 100; ++i) {
          const std::string msg = "message " + std::to_string(i);
          REQUIRE(co_await f->write_all(msg));
          std::string back(msg.size(), '\0');
          REQUIRE(co_await f->read_exact(std::as_writable_bytes(std::span(back))));
          CHECK(back == msg);
        }
        const std::vector<std::byte> small = pattern(4096);
        CHECK(co_await round_trip(*f, small, 1) == small);
        const std::vector<std::byte> big = pattern(1 << 20);
        CHECK(co_await round_trip(*f, big, 64 * 1024) == big);
        REQUIRE(co_await f->close());
        CHECK_FALSE(f->is_open());
        co_await sc.join();
      });
      co_return echoed;
    }());
    std::size_t expected = 4096 + (1 << 20);
    for (int i = 0; i < 100; ++i) expected += ("message " + std::to_string(i)).size();
    CHECK(echoed == expected);
  });
}

TEST_CASE("flow: echo across two threads, each with its own shard, over IPv4 and IPv6") {
  for_each_ring_mode([](ring_mode m) {
    for (bool v6 : {false, true}) {
      CAPTURE(v6);
      fd_leak_check leaks;
      result<listener> l = listener::open(socket_address::loopback(0, v6));
      if (!l && v6) {
        MESSAGE("no IPv6 loopback here: skipped");
        continue;
      }
      REQUIRE(l.has_value());
      std::size_t echoed = 0;
      std::thread server([&] {
        shard s({.mode = m});
        echoed = s.run(testing::echo_server(*l, 4));
      });
      {
        shard s({.mode = m});
        s.run([](socket_address to) -> task<void> {
          std::vector<task<void>> clients;
          for (int c = 0; c < 4; ++c) {
            clients.push_back([](socket_address to, int c) -> task<void> {
              result<flow> f = co_await connect(to, 1s);
              REQUIRE(f.has_value());
              const std::vector<std::byte> data = pattern(256 * 1024 + c);
              CHECK(co_await round_trip(*f, data, 1 + c * 1000) == data);
            }(to, c));
          }
          co_await when_all(std::move(clients));
        }(l->address()));
      }
      server.join();
      CHECK(echoed == 4 * 256 * 1024 + 0 + 1 + 2 + 3);
    }
  });
}

TEST_CASE("flow: read_exact reports end_of_stream when the peer closes early") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<listener> l = listener::open(socket_address::loopback(0));
      result<flow> c = co_await connect(l->address());
      result<flow> p = co_await l->accept();
      REQUIRE(co_await p->write_all("abc"));
      REQUIRE(co_await p->close());
      std::byte buf[8];
      CHECK(co_await c->read_exact(buf) == fail(errc::end_of_stream));
      CHECK(co_await c->read_some(buf) == 0u);
    }());
  });
}

TEST_CASE("flow: writing to a reset peer reports the system error, no SIGPIPE") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<listener> l = listener::open(socket_address::loopback(0));
      result<flow> c = co_await connect(l->address());
      {
        result<flow> p = co_await l->accept();
        const linger lg{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(p->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      }  // RST
      std::vector<std::byte> chunk(64 * 1024);
      result<void> r;
      for (int i = 0; i < 100 && r; ++i) r = co_await c->write_all(chunk);
      REQUIRE_FALSE(r.has_value());
      CHECK((r.error() == std::errc::connection_reset || r.error() == std::errc::broken_pipe));
    }());
  });
}

TEST_CASE("flow: connect sets the options and connects in one linked batch; a bad option fails "
          "it cleanly") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<listener> l = listener::open(socket_address::loopback(0));
      REQUIRE(l.has_value());
      const socket_options with_keepalive{.keepalive = keepalive_settings{},
                                          .user_timeout = {}};

      // The options, the connect and its timeout: 4 + 1 + 1 + 1 SQEs, one submission, no
      // setsockopt syscall (where the kernel takes socket commands; else the syscalls).
      const shard_counters before = shard::current()->counters();
      result<flow> f = co_await connect(l->address(), 5s, with_keepalive);
      REQUIRE(f.has_value());
      const shard_counters after = shard::current()->counters();
      MESSAGE("SQEs for one connect: ", after.sqes - before.sqes);
      CHECK((after.sqes - before.sqes == 7 || after.sqes - before.sqes == 1 + 1));
      int idle = 0;
      socklen_t size = sizeof idle;
      REQUIRE(::getsockopt(f->native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, &size) == 0);
      CHECK(idle == 15);  // the default keepalive_settings reached the socket
      int nodelay = 0;
      REQUIRE(::getsockopt(f->native_handle(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
      CHECK(nodelay == 1);
      (void)co_await f->close();

      // TCP_KEEPIDLE over the kernel's 32767 s: the command fails, the kernel cancels the
      // connect, and the error is the option's (nothing connected, no descriptor left).
      const socket_options too_idle{.keepalive = keepalive_settings{.idle = 40'000s},
                                    .user_timeout = {}};
      result<flow> bad = co_await connect(l->address(), 5s, too_idle);
      REQUIRE(!bad.has_value());
      CHECK(bad.error() == std::errc::invalid_argument);

      // The shard still sends options as commands after an option's own error.
      const shard_counters again = shard::current()->counters();
      f = co_await connect(l->address(), 5s, with_keepalive);
      REQUIRE(f.has_value());
      CHECK(shard::current()->counters().sqes - again.sqes == after.sqes - before.sqes);
      (void)co_await f->close();
    }());
  });
}
