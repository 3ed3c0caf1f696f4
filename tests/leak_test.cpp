// SPDX-License-Identifier: MIT
// Leak detection (config::leak_threshold, HikariCP's leakDetectionThreshold): a lease held past
// the threshold is reported once, with its endpoint, how long it has been held and when it was
// handed out, and counted; a lease given back in time never is.
#include <chrono>
#include <sstream>
#include <vector>

#include "support/test_server.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::for_each_ring_mode;
using testing::test_server;
using testing::with_pool;

namespace {

struct leak_report {
  endpoint ep;
  std::chrono::steady_clock::duration held_for;
  std::chrono::steady_clock::time_point acquired_at;
};

}  // namespace

TEST_CASE("leaks: a lease held past leak_threshold is reported exactly once; one given back in time never") {
  for_each_ring_mode([](ring_mode m) {
    std::vector<leak_report> reports;
    config c;
    c.leak_threshold = 150ms;
    c.max_idle_time = 400ms;  // the part's sweep every 100 ms: a new lease is seen that soon
    c.on_lease_leak = [&reports](const endpoint& ep, std::chrono::steady_clock::duration held,
                                 std::chrono::steady_clock::time_point at) {
      reports.push_back({ep, held, at});
    };
    with_pool(m, c, [&reports](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      // Given back in time, many times over: never reported.
      for (int i = 0; i < 5; ++i) {
        result<connection> c = co_await p.acquire(ep);
        REQUIRE(c);
        (void)co_await sleep_for(5ms);
        p.release(std::move(*c));
      }
      CHECK(reports.empty());
      // Held well past the threshold (nothing to await: the lease must simply be out).
      const auto before = std::chrono::steady_clock::now();
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held);
      (void)co_await sleep_for(450ms);
      REQUIRE(reports.size() == 1);  // once, not at every look
      CHECK(reports[0].ep == ep);
      CHECK(reports[0].held_for >= 150ms);
      CHECK(reports[0].held_for < 450ms);
      // The loop's clock, read at its turn: near when acquire was called.
      CHECK(reports[0].acquired_at >= before - 50ms);
      CHECK(reports[0].acquired_at <= before + 50ms);
      CHECK(p.stats(ep).leaks == 1);
      p.release(std::move(*held));
      // The same connection lent again and held too long: a new lease, a new report.
      held = co_await p.acquire(ep);
      REQUIRE(held);
      CHECK(p.stats(ep).total_reused >= 1);
      (void)co_await sleep_for(450ms);
      CHECK(reports.size() == 2);
      CHECK(p.stats(ep).leaks == 2);
      p.release(std::move(*held));
      CHECK(p.totals().leaks == 2);
    });
  });
}

TEST_CASE("leaks: leak_threshold is checked; on_lease_leak needs it; stats print leaks") {
  config bad;
  bad.leak_threshold = 0s;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("leak_threshold"), std::invalid_argument);
  config hook_alone;
  hook_alone.on_lease_leak = [](const endpoint&, std::chrono::steady_clock::duration,
                                std::chrono::steady_clock::time_point) {};
  CHECK_THROWS_WITH_AS(hook_alone.validate(), doctest::Contains("on_lease_leak"),
                       std::invalid_argument);
  endpoint_stats s;
  s.leaks = 3;
  std::ostringstream out;
  out << s;
  CHECK(out.str().find("leaks=3") != std::string::npos);
}
