// SPDX-License-Identifier: MIT
#include <stdexcept>
#include <vector>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;

TEST_CASE("scope: children run concurrently and join waits for all of them") {
  testing::for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    std::vector<int> order;
    s.run([](std::vector<int>& order) -> task<void> {
      co_await scoped([&](scope& sc) -> task<void> {
        // Spawned in order 3, 2, 1 with sleeps that finish 1, 2, 3: they overlap.
        for (int i : {3, 2, 1}) {
          sc.spawn([](int i, std::vector<int>& order) -> task<void> {
            REQUIRE(co_await sleep_for(i * 2ms));
            order.push_back(i);
          }(i, order));
        }
        CHECK(sc.running() == 3);
        co_await sc.join();
        CHECK(sc.running() == 0);
      });
    }(order));
    CHECK(order == std::vector<int>{1, 2, 3});
  });
}

TEST_CASE("scope: leaving the body cancels the children still running and joins them") {
  testing::for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    int cancelled = 0;
    s.run([](int& cancelled) -> task<void> {
      co_await scoped([&](scope& sc) -> task<void> {
        for (int i = 0; i < 5; ++i) {
          sc.spawn([](int& cancelled) -> task<void> {
            result<void> r = co_await sleep_for(1h);
            if (!r && r.error() == std::errc::operation_canceled) ++cancelled;
          }(cancelled));
        }
        co_return;  // no join: scope exit cancels
      });
      CHECK(cancelled == 5);  // all joined before scoped returned
    }(cancelled));
  });
}

TEST_CASE("scope: a child's exception cancels its siblings and is rethrown after the join") {
  shard s;
  bool sibling_cancelled = false;
  CHECK_THROWS_WITH(s.run([](bool& sibling_cancelled) -> task<void> {
    co_await scoped([&](scope& sc) -> task<void> {
      sc.spawn([](bool& flag) -> task<void> {
        result<void> r = co_await sleep_for(1h);
        flag = !r && r.error() == std::errc::operation_canceled;
      }(sibling_cancelled));
      sc.spawn([]() -> task<void> {
        co_await io::nop();
        throw std::runtime_error("child failed");
      }());
      co_await sc.join();
    });
  }(sibling_cancelled)),
                    "child failed");
  CHECK(sibling_cancelled);
}

TEST_CASE("scope: scoped gives the body's value; cancelling the caller reaches the children") {
  shard s;
  s.run([]() -> task<void> {
    int v = co_await scoped([](scope&) -> task<int> { co_return 7; });
    CHECK(v == 7);
    // The body's caller runs under a deadline: its expiry cancels the scope's children too.
    result<void> r =
        co_await with_timeout(2ms, scoped([](scope& sc) -> task<void> {
                                sc.spawn([]() -> task<void> { (void)co_await sleep_for(1h); }());
                                co_await sc.join();
                              }));
    CHECK(r.error() == errc::timed_out);
  }());
}

TEST_CASE("when_all: values in order, exceptions propagate") {
  shard s;
  s.run([]() -> task<void> {
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10; ++i) {
      tasks.push_back([](int i) -> task<int> {
        REQUIRE(co_await sleep_for((10 - i) * 100us));
        co_return i* i;
      }(i));
    }
    std::vector<int> squares = co_await when_all(std::move(tasks));
    REQUIRE(squares.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(squares[i] == i * i);

    std::vector<task<void>> voids;
    int ran = 0;
    for (int i = 0; i < 3; ++i) {
      voids.push_back([](int& ran) -> task<void> {
        co_await io::nop();
        ++ran;
      }(ran));
    }
    co_await when_all(std::move(voids));
    CHECK(ran == 3);

    std::vector<task<int>> failing;
    failing.push_back([]() -> task<int> { co_return 1; }());
    failing.push_back([]() -> task<int> {
      throw std::logic_error("no");
      co_return 2;
    }());
    CHECK_THROWS_AS(co_await when_all(std::move(failing)), std::logic_error);
  }());
}
