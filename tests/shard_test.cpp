// SPDX-License-Identifier: MIT
#include <liburing.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <stdexcept>
#include <thread>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible_v<shard>);

TEST_CASE("shard: ring set-up follows the mode asked for") {
  {
    shard s({.mode = ring_mode::plain});
    CHECK(s.mode() == ring_mode::plain);
    CHECK((s.ring_flags() & IORING_SETUP_DEFER_TASKRUN) == 0);
    CHECK(shard::current() == &s);
  }
  CHECK(shard::current() == nullptr);
  if (shard::kernel_has_defer_taskrun()) {
    shard s({.mode = ring_mode::automatic});
    CHECK(s.mode() == ring_mode::defer_taskrun);
    CHECK((s.ring_flags() & IORING_SETUP_DEFER_TASKRUN) != 0);
  }
}

TEST_CASE("shard: bad options and a second shard on one thread are refused with a clear error") {
  CHECK_THROWS_WITH_AS(shard({.entries = 0}),
                       "conpool::shard_options::entries: 0 is out of range (2 to 16384)",
                       std::invalid_argument);
  CHECK_THROWS_AS(shard({.entries = 1}), std::invalid_argument);
  CHECK_THROWS_AS(shard({.entries = 16385}), std::invalid_argument);
  shard s;
  CHECK_THROWS_AS(shard(), std::logic_error);
}

TEST_CASE("shard: one io_uring_enter per turn submits the batch and waits") {
  testing::for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    s.run([]() -> task<void> {
      for (int i = 0; i < 10; ++i) REQUIRE(co_await io::nop());
    }());
    const shard_counters c = s.counters();
    CHECK(c.sqes == 10);
    CHECK(c.cqes == 10);
    CHECK(c.enters <= c.turns);
  });
}

TEST_CASE("shard: spawned tasks run, their errors reach run, and the destructor cancels them") {
  testing::for_each_ring_mode([](ring_mode m) {
    testing::fd_leak_check leaks;
    int done = 0;
    bool cancelled = false;
    {
      shard s({.mode = m});
      s.spawn([](int& done) -> task<void> {
        REQUIRE(co_await sleep_for(1ms));
        ++done;
      }(done));
      s.spawn([](bool& cancelled) -> task<void> {
        result<void> r = co_await sleep_for(1h);  // cancelled by ~shard
        cancelled = !r && r.error() == std::errc::operation_canceled;
      }(cancelled));
      s.run([](int& done) -> task<void> {
        while (done == 0) REQUIRE(co_await sleep_for(100us));
      }(done));
      CHECK(s.spawned() == 1);
      s.spawn([]() -> task<void> {
        co_await io::nop();
        throw std::runtime_error("spawned failure");
      }());
      CHECK_THROWS_WITH(s.run([]() -> task<void> { co_await sleep_for(1ms); }()),
                        "spawned failure");
    }
    CHECK(done == 1);
    CHECK(cancelled);
  });
}

TEST_CASE("shard: a task waiting on nothing is reported as a deadlock, not a hang") {
  shard s;
#if defined(__SANITIZE_ADDRESS__)
  // The deadlocked frame is leaked on purpose (destroying it could free a scope that other
  // frames still point at): not a leak to report.
  __lsan::ScopedDisabler leaked_on_purpose;
#endif
  CHECK_THROWS_WITH_AS(s.run([]() -> task<void> { co_await std::suspend_always{}; }()),
                       "conpool::shard::run: every task is waiting and nothing in flight can "
                       "wake one (deadlock); the waiting frames are leaked, not destroyed",
                       std::logic_error);
}

TEST_CASE("shard: shards on two threads run independently") {
  auto work = [](int& out) {
    shard s;
    out = s.run([]() -> task<int> {
      int sum = 0;
      for (int i = 0; i < 100; ++i) {
        REQUIRE(co_await io::nop());
        sum += i;
      }
      co_return sum;
    }());
  };
  int a = 0;
  int b = 0;
  std::thread t1(work, std::ref(a));
  std::thread t2(work, std::ref(b));
  t1.join();
  t2.join();
  CHECK(a == 4950);
  CHECK(b == 4950);
}

TEST_CASE("shard: the loop refuses re-entry and empty tasks with a clear error") {
  shard s;
  CHECK_THROWS_WITH_AS(s.run([]() -> task<void> {
    shard::current()->run([]() -> task<void> { co_return; }());
    co_return;
  }()),
                       "conpool::shard::run: called from inside the shard's own loop; co_await "
                       "the task instead",
                       std::logic_error);
  s.spawn([]() -> task<void> {
    (void)shard::current()->poll();
    co_return;
  }());
  CHECK_THROWS_AS(s.poll(), std::logic_error);  // the spawned task's error, rethrown
  CHECK_THROWS_AS(s.run(task<int>{}), std::invalid_argument);
  CHECK_THROWS_AS(s.spawn(task<void>{}), std::invalid_argument);
}
