// SPDX-License-Identifier: MIT
#include <sys/socket.h>

#include <vector>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::fd_leak_check;
using testing::for_each_ring_mode;

namespace {

task<result<void>> read_one(flow& f) {
  std::byte b[16];
  co_return co_await f.read_exact(b);
}

// Sends until the peer's receive buffer and ours are full and the send blocks.
task<result<void>> flood(flow& f) {
  std::vector<std::byte> chunk(1 << 20);
  for (;;) {
    result<void> r = co_await f.write_all(chunk);
    if (!r) co_return r;
  }
}

}  // namespace

TEST_CASE("cancel: with_timeout cuts each kind of await point and leaks no descriptor") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    testing::full_backlog full;
    {
      shard s({.mode = m});
      s.run([](socket_address unreachable) -> task<void> {
        SUBCASE("connect") {
          result<flow> f = co_await with_timeout(5ms, connect(unreachable));
          CHECK(f.error() == errc::timed_out);
        }
        result<listener> l = listener::open(socket_address::loopback(0));
        REQUIRE(l.has_value());
        result<flow> client = co_await connect(l->address());
        result<flow> server = co_await l->accept();
        REQUIRE((client && server));
        SUBCASE("recv") {
          CHECK(co_await with_timeout(5ms, read_one(*client)) == fail(errc::timed_out));
        }
        SUBCASE("send") {
          CHECK(co_await with_timeout(20ms, flood(*client)) == fail(errc::timed_out));
        }
        SUBCASE("sleep") {
          CHECK(co_await with_timeout(1ms, sleep_for(1h)) == fail(errc::timed_out));
        }
        SUBCASE("accept") {
          result<flow> f = co_await with_timeout(1ms, l->accept());
          CHECK(f.error() == errc::timed_out);
        }
        // The flow is still usable after a cancelled read: nothing was consumed.
        REQUIRE(co_await server->write_all("0123456789abcdef"));
        SUBCASE("after a cancelled read") { CHECK(co_await read_one(*client)); }
      }(full.address));
    }
  });
}

TEST_CASE("cancel: a task that finishes first gets its value; the timer is disarmed") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<int> v = co_await with_timeout(1h, []() -> task<int> {
        co_await io::nop();
        co_return 5;
      }());
      CHECK(v == 5);
      result<void> r = co_await with_timeout(1h, sleep_for(1ms));
      CHECK(r.has_value());
    }());
    // Both timers were removed: the loop ended without waiting an hour.
  });
}

TEST_CASE("cancel: nested deadlines: the inner one fires, the outer one stays armed") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<void> r = co_await with_timeout(1h, []() -> task<result<void>> {
        result<void> inner = co_await with_timeout(1ms, sleep_for(1h));
        CHECK(inner.error() == errc::timed_out);
        co_return co_await sleep_for(1ms);  // the outer fiber is not cancelled
      }());
      CHECK(r.has_value());
    }());
  });
}

TEST_CASE("cancel: a shielded section runs to its end; the cancel is seen after it") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      bool section_done = false;
      result<void> r = co_await with_timeout(1ms, [](bool& done) -> task<result<void>> {
        result<void> inside = co_await shield([]() -> task<result<void>> {
          co_return co_await sleep_for(10ms);  // outlives the 1 ms deadline
        }());
        CHECK(inside.has_value());
        done = true;
        co_return co_await io::nop();  // the deadline's cancel applies again here
      }(section_done));
      CHECK(section_done);
      CHECK(r.error() == errc::timed_out);
    }());
  });
}

TEST_CASE("cancel: a cancelled fiber's later operations fail at once without the kernel") {
  shard s;
  s.run([]() -> task<void> {
    co_await scoped([](scope& sc) -> task<void> {
      sc.cancel();
      sc.spawn([]() -> task<void> {
        const std::uint64_t before = shard::current()->counters().sqes;
        for (int i = 0; i < 3; ++i) {
          result<void> r = co_await sleep_for(1h);
          CHECK(r.error() == std::errc::operation_canceled);
        }
        CHECK(shard::current()->counters().sqes == before);
      }());
      co_await sc.join();
    });
  }());
}

namespace {

task<void> sleeper(int& cancelled) {
  result<void> r = co_await sleep_for(1h);
  if (!r && r.error() == std::errc::operation_canceled) ++cancelled;
}

// A tree twice `depth` deep: each level's scope holds a sleeper and the next level.
task<void> nest(int depth, int& cancelled) {
  co_await scoped([&](scope& sc) -> task<void> {
    sc.spawn(sleeper(cancelled));
    if (depth > 0) sc.spawn(nest(depth - 1, cancelled));
    co_await sc.join();
  });
}

}  // namespace

TEST_CASE("cancel: a deadline reaches every fiber of a deep tree") {
  for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    int cancelled = 0;
    s.run([](int& cancelled) -> task<void> {
      result<void> r = co_await with_timeout(5ms, nest(500, cancelled));
      CHECK(r.error() == errc::timed_out);
    }(cancelled));
    CHECK(cancelled == 501);
  });
}
