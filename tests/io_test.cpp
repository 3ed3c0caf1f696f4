// SPDX-License-Identifier: MIT
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::fd_leak_check;
using testing::for_each_ring_mode;

static_assert(!std::is_move_constructible_v<io::recv_op>, "operations are immovable");
static_assert(!std::is_copy_constructible_v<io::connect_op>);

namespace {

// A connected pair over loopback TCP: `client` from conpool's connect, `server` accepted.
struct tcp_pair {
  flow client;
  flow server;
};

task<tcp_pair> make_pair() {
  result<listener> l = listener::open(socket_address::loopback(0));
  REQUIRE(l.has_value());
  result<flow> c = co_await connect(l->address());
  REQUIRE(c.has_value());
  result<flow> s = co_await l->accept();
  REQUIRE(s.has_value());
  co_return tcp_pair{std::move(*c), std::move(*s)};
}

void set_linger_zero(int fd) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
}

}  // namespace

TEST_CASE("io: NOP and sleep round-trip through the ring") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      CHECK(co_await io::nop());
      CHECK(co_await sleep_for(1ms));
      CHECK(co_await sleep_for(-5ms));  // a past deadline is an immediate one
    }());
  });
}

TEST_CASE("io: connect refused gives ECONNREFUSED and a message naming the address") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    testing::refusing_port port;
    shard s({.mode = m});
    s.run([](socket_address to) -> task<void> {
      result<flow> f = co_await connect(to, 1s);
      REQUIRE_FALSE(f.has_value());
      CHECK(f.error() == std::errc::connection_refused);
      const std::string msg = describe(f.error(), to.to_string(), "connect");
      CHECK(msg.find(to.to_string()) == 0);
      CHECK(msg.find("connect") != std::string::npos);
    }(port.address));
  });
}

TEST_CASE("io: connect to a listener whose backlog is full times out with errc::connect_timeout") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    // Backlog 0 holds one finished handshake; with that one queued and never accepted, the
    // kernel drops further SYNs, so the next connect hangs until our linked timeout fires.
    testing::full_backlog full;
    shard s({.mode = m});
    s.run([](socket_address to) -> task<void> {
      result<flow> f = co_await connect(to, 50ms);
      REQUIRE_FALSE(f.has_value());
      CHECK(f.error() == errc::connect_timeout);
    }(full.address));
  });
}

TEST_CASE("io: zero-length recv probes report healthy, peer FIN, peer bytes and peer RST") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      std::byte b[1];
      SUBCASE("healthy: MSG_DONTWAIT gives EAGAIN at once; armed with a timeout it waits") {
        tcp_pair p = co_await make_pair();
        result<std::size_t> r = co_await io::recv(p.client.native_handle(), {}, MSG_DONTWAIT);
        CHECK(r.error() == std::errc::resource_unavailable_try_again);
        r = co_await io::recv(p.client.native_handle(), {}, 0, 5ms);
        CHECK(r.error() == errc::timed_out);
      }
      SUBCASE("peer FIN: the probe completes with 0") {
        tcp_pair p = co_await make_pair();
        REQUIRE(co_await p.server.close());
        CHECK(co_await io::recv(p.client.native_handle(), {}) == 0u);
        CHECK(co_await io::recv(p.client.native_handle(), {}, MSG_DONTWAIT) == 0u);
      }
      SUBCASE("peer bytes: the probe completes with 0 and the bytes stay readable") {
        tcp_pair p = co_await make_pair();
        REQUIRE(co_await p.server.write_all("x"));
        CHECK(co_await io::recv(p.client.native_handle(), {}) == 0u);
        CHECK(co_await p.client.read_some(b) == 1u);
      }
      SUBCASE("peer RST: the armed probe completes with ECONNRESET") {
        tcp_pair p = co_await make_pair();
        set_linger_zero(p.server.native_handle());
        REQUIRE(co_await p.server.close());
        result<std::size_t> r = co_await io::recv(p.client.native_handle(), {});
        CHECK(r.error() == std::errc::connection_reset);
      }
    }());
  });
}

TEST_CASE("io: cancel_fd cancels every operation in flight on a socket") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      tcp_pair p = co_await make_pair();
      result<std::size_t> watched;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](int fd, result<std::size_t>& out) -> task<void> {
          out = co_await io::recv(fd, {});  // an idle watcher
        }(p.client.native_handle(), watched));
        REQUIRE(co_await io::nop());  // let the watcher reach the kernel
        result<unsigned> n = co_await io::cancel_fd(p.client.native_handle());
        CHECK(n == 1u);
        co_await sc.join();
      });
      CHECK(watched.error() == std::errc::operation_canceled);
      CHECK(co_await io::cancel_fd(p.client.native_handle()) == 0u);
    }());
  });
}

TEST_CASE("io: MSG_RING carries messages between shards on two threads") {
  for_each_ring_mode([](ring_mode m) {
    std::atomic<int> receiver_ring{-1};
    std::vector<message> got;
    std::thread receiver([&] {
      shard s({.mode = m});
      receiver_ring = s.ring_fd();
      receiver_ring.notify_one();
      s.run([](std::vector<message>& got) -> task<void> {
        for (int i = 0; i < 3; ++i) {
          result<message> msg = co_await io::msg_receive();
          REQUIRE(msg.has_value());
          got.push_back(*msg);
        }
      }(got));
    });
    receiver_ring.wait(-1);
    {
      shard s({.mode = m});
      s.run([](int target) -> task<void> {
        for (int i = 0; i < 3; ++i) {
          const message msg{.data = (std::uint64_t{1} << 60) + i, .value = -7 - i};
          CHECK(co_await io::msg_send(target, msg));
        }
      }(receiver_ring.load()));
    }
    receiver.join();
    REQUIRE(got.size() == 3);
    for (int i = 0; i < 3; ++i) {
      CHECK(got[i].data == (std::uint64_t{1} << 60) + i);
      CHECK(got[i].value == -7 - i);
    }
  });
}

TEST_CASE("io: a receiver waiting on MSG_RING is cancelled cleanly") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<message> r = co_await with_timeout(
          1ms, []() -> task<result<message>> { co_return co_await io::msg_receive(); }());
      CHECK(r.has_value() == false);
      CHECK(r.error() == errc::timed_out);
      // A message to ourselves is queued in the inbox and picked up later.
      REQUIRE(co_await io::msg_send(shard::current()->ring_fd(), {.data = 5, .value = 6}));
      result<message> msg = co_await io::msg_receive();
      CHECK(msg->data == 5);
      CHECK(msg->value == 6);
    }());
  });
}
