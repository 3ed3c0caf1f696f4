// SPDX-License-Identifier: MIT
// Endpoint reclamation (config::endpoint_idle_timeout): an endpoint with no connection, waiter
// or handle for that long leaves the pool, its totals kept in pool::totals and its memory
// returned; a held handle keeps it listed; used again, it comes back.
#include <malloc.h>

#include <vector>

#include "support/test_server.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::echo_once;
using testing::for_each_ring_mode;
using testing::refusing_port;
using testing::test_server;
using testing::with_pool;

namespace {

config reclaiming() {
  config c;
  c.endpoint_idle_timeout = 50ms;
  c.max_idle_time = 20ms;
  return c;
}

// The pool's reclamation runs on its timer: polled every few ms, bounded at 5 s.
template <class Pred>
task<bool> eventually(Pred done) {
  for (int i = 0; i < 1000 && !done(); ++i) (void)co_await sleep_for(5ms);
  co_return done();
}

task<result<std::string>> echo_on(pool& p, const endpoint& ep, std::string msg) {
  // By reference: a by-value capture inside a co_await is destroyed twice by g++ 12.
  co_return co_await p.with_connection(ep, [&msg](flow& f) { return echo_once(f, msg); });
}

// Bytes malloc has handed out and not taken back (the sanitizers' allocators do not say).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool heap_measured = false;
#else
constexpr bool heap_measured = true;
#endif
std::size_t heap_in_use() { return mallinfo2().uordblks; }

}  // namespace

TEST_CASE("reclaim: an unused endpoint leaves the table, its totals kept; used again it comes back") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, reclaiming(), [](pool& p, test_server& first) -> task<void> {
      test_server second;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn(second.run(sc));
        const endpoint a = first.where();
        const endpoint b = second.where();
        CHECK(co_await echo_on(p, a, "a") == "a");
        CHECK(co_await echo_on(p, a, "a") == "a");
        CHECK(co_await echo_on(p, b, "b") == "b");
        CHECK(p.endpoints() == 2);
        CHECK(p.all_stats().size() == 2);
        // Their idle connections expire (20 ms), then the endpoints (50 ms unused).
        CHECK(co_await eventually([&] { return p.endpoints() == 0; }));
        CHECK(p.all_stats().empty());
        CHECK(p.stats(a) == endpoint_stats{});
        const endpoint_stats t = p.totals();
        CHECK(t.total_created == 2);
        CHECK(t.total_reused == 1);
        CHECK(t.total_closed == 2);
        CHECK(t.closed_for(close_reason::idle_expired) == 2);
        CHECK(t.active == 0);
        CHECK(t.idle == 0);
        // Used again: a new entry, its own stats from zero; the pool's totals go on.
        CHECK(co_await echo_on(p, a, "again") == "again");
        CHECK(p.endpoints() == 1);
        CHECK(p.stats(a).total_created == 1);
        CHECK(p.stats(a).total_reused == 0);
        CHECK(p.totals().total_created == 3);
        CHECK(p.totals().idle == 1);
        sc.cancel();
      });
    });
  });
}

TEST_CASE("reclaim: a held handle keeps its endpoint and stats while its slab goes; dropped, the endpoint goes") {
  for_each_ring_mode([](ring_mode m) {
    refusing_port refusing;
    with_pool(m, reclaiming(), [&refusing](pool& p, test_server&) -> task<void> {
      const endpoint ep{"127.0.0.1", refusing.address.port()};
      endpoint_handle h = p.handle(ep);
      result<connection> c = co_await p.acquire(h);
      CHECK(c.error() == std::errc::connection_refused);
      CHECK(p.stats(h).errors == 1);
      CHECK(!p.last_error(h).empty());  // kept in the shard's slab
      // The slab goes (its last error with it); the endpoint stays, held by the handle.
      CHECK(co_await eventually([&] { return p.last_error(h).empty(); }));
      CHECK(p.endpoints() == 1);
      CHECK(p.stats(ep).errors == 1);
      // Used through the handle again: a slab again, the same stats going on.
      c = co_await p.acquire(h);
      CHECK(c.error() == std::errc::connection_refused);
      CHECK(p.stats(h).errors == 2);
      // A copy keeps it too; the last one dropped lets it go once its slab has gone.
      endpoint_handle copy = h;
      h = endpoint_handle{};
      CHECK(co_await eventually([&] { return p.last_error(copy).empty(); }));
      CHECK(p.endpoints() == 1);
      copy = endpoint_handle{};
      CHECK(p.endpoints() == 0);  // at once: no shard held it
      CHECK(p.totals().errors == 2);
    });
  });
}

TEST_CASE("reclaim: 2,000 endpoints made and let go: the memory returns") {
  with_pool(ring_mode::plain, reclaiming(), [](pool& p, test_server&) -> task<void> {
    // Handles make an entry and a slab each, without I/O.
    (void)p.handle(endpoint{"127.0.0.3", 1});  // the table's first allocations
    const std::size_t before = heap_in_use();
    {
      std::vector<endpoint_handle> handles;
      for (int i = 0; i < 2000; ++i) {
        handles.push_back(p.handle(endpoint{"127.0.0.2", static_cast<std::uint16_t>(i + 1)}));
      }
      CHECK(p.endpoints() == 2001);
      const std::size_t grown = heap_in_use() - before;
      MESSAGE("2,000 endpoints held: " << grown << " bytes, " << grown / 2000 << " each");
      if (heap_measured) CHECK(grown > 2000 * 500);
    }
    CHECK(co_await eventually([&] { return p.endpoints() == 0; }));
    (void)p.handle(endpoint{"127.0.0.3", 1});  // as before
    const std::size_t after = heap_in_use();
    MESSAGE("after reclamation: " << static_cast<long>(after) - static_cast<long>(before)
                                  << " bytes more than before");
    if (heap_measured) CHECK(after < before + 64 * 1024);
  });
}

TEST_CASE("reclaim: endpoint_idle_timeout is checked; unset keeps endpoints") {
  config bad;
  bad.endpoint_idle_timeout = 0s;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("endpoint_idle_timeout"),
                       std::invalid_argument);
  bad.endpoint_idle_timeout = std::chrono::duration<double>(1e300);
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("endpoint_idle_timeout"),
                       std::invalid_argument);
  config keep = reclaiming();
  keep.endpoint_idle_timeout.reset();
  with_pool(ring_mode::plain, keep, [](pool& p, test_server& server) -> task<void> {
    CHECK(co_await echo_on(p, server.where(), "x") == "x");
    CHECK(co_await eventually([&] { return p.stats(server.where()).idle == 0; }));
    (void)co_await sleep_for(100ms);  // twice what reclaiming() would take
    CHECK(p.endpoints() == 1);
    CHECK(p.stats(server.where()).total_closed == 1);
  });
}

TEST_CASE("reclaim: an open circuit breaker keeps its endpoint's slab (it would close with it)") {
  refusing_port refusing;
  with_pool(ring_mode::plain, reclaiming(), [&refusing](pool& p, test_server&) -> task<void> {
    const endpoint down{"127.0.0.1", refusing.address.port()};
    auto echo = [](flow& f) { return echo_once(f, "x"); };
    result<std::string> r = co_await p.with_circuit_breaker(down, 1, 10s, echo);
    CHECK(r.error() == std::errc::connection_refused);  // the breaker opens
    // Twice the reclamation time (nothing to await: the slab must stay).
    (void)co_await sleep_for(100ms);
    CHECK(p.endpoints() == 1);
    r = co_await p.with_circuit_breaker(down, 1, 10s, echo);
    CHECK(r.error() == errc::circuit_open);  // still open: refused without a connect
    CHECK(p.stats(down).errors == 1);
  });
}
