// SPDX-License-Identifier: MIT
#include <climits>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "support/test_server.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::check_stats_add_up;
using testing::echo_once;
using testing::fd_leak_check;
using testing::for_each_ring_mode;
using testing::test_server;
using testing::turns_until;
using testing::with_pool;

static_assert(!std::is_copy_constructible_v<connection>);
static_assert(std::is_nothrow_move_constructible_v<connection>);
static_assert(!std::is_copy_constructible_v<pool>);

namespace {

task<result<std::string>> echo_on(pool& p, const endpoint& ep, std::string msg) {
  // By reference: a by-value capture inside a co_await is destroyed twice by g++ 12.
  co_return co_await p.with_connection(ep, [&msg](flow& f) { return echo_once(f, msg); });
}

}  // namespace

TEST_CASE("pool: create, use, release, reuse") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      for (int i = 0; i < 5; ++i) CHECK(co_await echo_on(p, ep, "hello") == "hello");
      CHECK(co_await turns_until([&] { return server.accepted == 1; }));
      endpoint_stats s = p.stats(ep);
      CHECK(s.total_created == 1);
      CHECK(s.total_reused == 4);
      CHECK(s.idle == 1);
      CHECK(s.active == 0);
      CHECK(server.accepted == 1);

      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c.has_value());
      CHECK(c->use_count() == 6);
      CHECK(c->endpoint() == ep);
      CHECK(p.stats(ep).active == 1);
      CHECK(co_await echo_once(c->flow(), "x") == "x");
      p.release(std::move(*c));
      CHECK(p.stats(ep).idle == 1);
      check_stats_add_up(p);
    });
  });
}

TEST_CASE("pool: an error result or an exception closes the connection instead of reusing it") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      result<int> r = co_await p.with_connection(
          ep, [](flow&) -> task<result<int>> { co_return fail(errc::unhealthy); });
      CHECK(r.error() == errc::unhealthy);
      CHECK(p.stats(ep).total_closed == 1);
      CHECK(p.stats(ep).errors == 1);
      CHECK(p.stats(ep).idle == 0);

      CHECK_THROWS_WITH(co_await p.with_connection(ep,
                                                   [](flow&) -> task<void> {
                                                     throw std::runtime_error("callback failed");
                                                     co_return;
                                                   }),
                        "callback failed");
      CHECK(p.stats(ep).total_closed == 2);
      CHECK(co_await echo_on(p, ep, "after") == "after");  // a new one
      CHECK(p.stats(ep).total_created == 3);
      // A lease dropped without release or close is closed.
      {
        result<connection> c = co_await p.acquire(ep);
        REQUIRE(c.has_value());
      }
      CHECK(p.stats(ep).total_closed == 3);
      check_stats_add_up(p);
    });
  });
}

TEST_CASE("pool: lifetime, idle time and use count retire connections") {
  for_each_ring_mode([](ring_mode m) {
    SUBCASE("max_connection_uses") {
      config c;
      c.max_connection_uses = 2;
      with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
        const endpoint ep = server.where();
        for (int i = 0; i < 5; ++i) CHECK(co_await echo_on(p, ep, "u") == "u");
        CHECK(p.stats(ep).total_created == 3);  // uses 1-2, 3-4, 5
        CHECK(p.stats(ep).total_closed == 2);
      });
    }
    SUBCASE("max_connection_lifetime") {
      config c;
      c.max_connection_lifetime = 20ms;
      with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
        const endpoint ep = server.where();
        CHECK(co_await echo_on(p, ep, "a") == "a");
        REQUIRE(co_await sleep_for(30ms));
        CHECK(p.stats(ep).total_closed == 1);  // the sweeper closed it
        CHECK(co_await echo_on(p, ep, "b") == "b");
        CHECK(p.stats(ep).total_created == 2);
      });
    }
    SUBCASE("max_idle_time") {
      config c;
      c.max_idle_time = 20ms;
      with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
        const endpoint ep = server.where();
        CHECK(co_await echo_on(p, ep, "a") == "a");
        CHECK(co_await echo_on(p, ep, "a") == "a");  // well within the idle time: reused
        CHECK(p.stats(ep).total_reused == 1);
        REQUIRE(co_await sleep_for(30ms));
        CHECK(co_await echo_on(p, ep, "b") == "b");
        CHECK(p.stats(ep).total_created == 2);
        CHECK(server.accepted == 2);
      });
    }
  });
}

TEST_CASE("pool: a failing health check replaces the connection, unseen by the caller") {
  for_each_ring_mode([](ring_mode m) {
    int checks = 0;
    config c;
    c.health_check = [&checks](flow& f) -> task<bool> {
      ++checks;
      // PING/PONG over the echo server; every other check fails.
      result<std::string> r = co_await echo_once(f, "PING");
      co_return r&&* r == "PING" && checks % 2 == 1;
    };
    with_pool(m, c, [&checks](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      CHECK(co_await echo_on(p, ep, "1") == "1");  // new: no check
      CHECK(co_await echo_on(p, ep, "2") == "2");  // check 1 passes: reused
      CHECK(co_await echo_on(p, ep, "3") == "3");  // check 2 fails: replaced
      CHECK(checks == 2);
      CHECK(p.stats(ep).total_created == 2);
      CHECK(p.stats(ep).total_closed == 1);
      CHECK(p.stats(ep).errors == 0);
    });
  });
}

TEST_CASE("pool: is_healthy with check_readable, validate_and_release") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c.has_value());
      CHECK(co_await p.is_healthy(*c, true));
      co_await server.apply(test_server::act::fin);
      CHECK_FALSE(co_await p.is_healthy(*c, true));
      co_await p.validate_and_release(std::move(*c));
      CHECK(p.stats(ep).total_closed == 1);
      CHECK(p.stats(ep).idle == 0);
    });
  });
}

TEST_CASE("pool: idle watchers evict a connection the server closes, resets or writes into") {
  for_each_ring_mode([](ring_mode m) {
    for (test_server::act a :
         {test_server::act::fin, test_server::act::rst, test_server::act::stray}) {
      CAPTURE(static_cast<int>(a));
      with_pool(m, default_config(), [a](pool& p, test_server& server) -> task<void> {
        const endpoint ep = server.where();
        CHECK(co_await echo_on(p, ep, "warm") == "warm");
        REQUIRE(p.stats(ep).idle == 1);
        co_await server.apply(a);
        // Evicted as soon as the watcher's completion is in: no acquire needed to notice.
        CHECK(co_await turns_until([&] { return p.stats(ep).idle == 0; }));
        CHECK(p.stats(ep).total_closed == 1);
        CHECK(co_await echo_on(p, ep, "next") == "next");  // no error for the caller
        CHECK(p.stats(ep).total_created == 2);
        CHECK(p.stats(ep).errors == 0);
      });
    }
  });
}

TEST_CASE("pool: 1000 tasks, limit 10: the server never sees more than 10, waiters in order") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 10;
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      std::vector<int> order;
      int ok = 0;
      co_await scoped([&](scope& sc) -> task<void> {
        for (int i = 0; i < 1000; ++i) {
          sc.spawn([](pool& p, const endpoint& ep, int i, std::vector<int>& order,
                      int& ok) -> task<void> {
            result<connection> c = co_await p.acquire(ep);
            REQUIRE(c.has_value());
            order.push_back(i);
            result<std::string> r = co_await echo_once(c->flow(), std::to_string(i));
            if (r && *r == std::to_string(i)) ++ok;
            p.release(std::move(*c));
          }(p, ep, i, order, ok));
        }
        co_await sc.join();
      });
      CHECK(ok == 1000);
      CHECK(server.peak <= 10);
      CHECK(p.stats(ep).total_created <= 10);
      // The first ten opened connections (finishing in any order); the rest waited, FIFO.
      std::vector<int> waited(order.begin() + 10, order.end());
      CHECK(std::is_sorted(waited.begin(), waited.end()));
      check_stats_add_up(p);
    });
  });
}

TEST_CASE("pool: any limit up to INT_MAX works; slots are made as connections need them") {
  for (const int limit : {1, 7, 9, 1'000'000, INT_MAX}) {
    CAPTURE(limit);
    config c;
    c.max_connections_per_endpoint = limit;
    CHECK_NOTHROW(c.validate());
    with_pool(ring_mode::automatic, c, [limit](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      // 40 at once: past the first chunks of slots (8, then growing by half), within the limit.
      const int want = std::min(limit, 40);
      std::vector<connection> held;
      for (int i = 0; i < want; ++i) {
        result<connection> r = co_await p.acquire(ep);
        REQUIRE(r.has_value());
        CHECK(co_await echo_once(r->flow(), "x" + std::to_string(i)) == "x" + std::to_string(i));
        held.push_back(std::move(*r));
      }
      CHECK(server.open_now == want);
      CHECK(p.stats(ep).active == static_cast<std::uint64_t>(want));
      for (connection& h : held) p.release(std::move(h));
      CHECK(p.stats(ep).idle == static_cast<std::uint64_t>(want));
      // Reused, not opened again: the slots stay.
      result<connection> again = co_await p.acquire(ep);
      REQUIRE(again.has_value());
      CHECK(again->reused());
      p.release(std::move(*again));
      CHECK(p.stats(ep).total_created == static_cast<std::uint64_t>(want));
      check_stats_add_up(p);
    });
  }
}

TEST_CASE("pool: endpoint handles: acquire, with_connection, stats, last_error; bad handles") {
  with_pool(ring_mode::automatic, default_config(), [](pool& p, test_server& server) -> task<void> {
    const endpoint ep = server.where();
    const endpoint_handle h = p.handle(ep);
    CHECK(h);
    CHECK(h == p.handle(ep));  // interned: one per endpoint
    CHECK(h.endpoint() == ep);
    testing::refusing_port nobody;
    const endpoint_handle dead = p.handle(endpoint{"127.0.0.1", nobody.address.port()});
    CHECK(h != dead);

    result<connection> c = co_await p.acquire(h);
    REQUIRE(c.has_value());
    CHECK(c->endpoint() == ep);
    p.release(std::move(*c));
    c = co_await p.acquire(h);  // the idle one, through the handle
    REQUIRE(c.has_value());
    CHECK(c->reused());
    p.release(std::move(*c));
    result<std::string> r = co_await p.with_connection(h, [](flow& f) {
      return echo_once(f, "handle");
    });
    CHECK(r == "handle");
    CHECK(p.stats(h).total_created == 1);
    CHECK(p.stats(h).total_reused == 2);
    CHECK(p.stats(h).total_reused == p.stats(ep).total_reused);  // one endpoint, two ways in
    CHECK(p.last_error(h).empty());

    result<connection> refused = co_await p.acquire(dead);
    CHECK(refused.error() == std::errc::connection_refused);
    CHECK(p.last_error(dead).find("connect") != std::string::npos);

    // Bad handles are refused before anything happens.
    pool other;
    const endpoint_handle foreign = other.handle(ep);
    CHECK_THROWS_WITH_AS((void)p.acquire(foreign), doctest::Contains("belongs to another pool"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)p.stats(endpoint_handle{}), doctest::Contains("empty"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)p.handle(endpoint{"no..such", 80}), doctest::Contains("empty label"),
                         std::invalid_argument);
    co_await other.close_pool();
  });
}

TEST_CASE("pool: max_idle_connections closes the least recently used idle one, any endpoint") {
  config c;
  c.max_idle_connections = 3;
  with_pool(ring_mode::automatic, c, [](pool& p, test_server& first) -> task<void> {
    // Six endpoints: six servers on the test's shard.
    std::vector<std::unique_ptr<test_server>> more;
    for (int i = 0; i < 5; ++i) more.push_back(std::make_unique<test_server>());
    co_await scoped([&](scope& sc) -> task<void> {
      for (auto& m : more) sc.spawn(m->run(sc));
      std::vector<endpoint> eps{first.where()};
      for (auto& m : more) eps.push_back(m->where());
      auto use = [&p](const endpoint& ep) -> task<void> {
        result<connection> c = co_await p.acquire(ep);
        REQUIRE(c.has_value());
        p.release(std::move(*c));
      };
      for (int i = 0; i < 4; ++i) co_await use(eps[i]);  // the 4th idle one: eps[0]'s goes
      CHECK(p.stats(eps[0]).closed_for(close_reason::idle_cap) == 1);
      CHECK(p.stats(eps[0]).idle == 0);
      co_await use(eps[1]);  // reused: now the most recently given back
      co_await use(eps[4]);  // the oldest is now eps[2]'s
      CHECK(p.stats(eps[2]).closed_for(close_reason::idle_cap) == 1);
      CHECK(p.stats(eps[1]).idle == 1);
      CHECK(p.stats(eps[1]).total_reused == 1);
      CHECK(p.stats(eps[3]).idle == 1);
      CHECK(p.stats(eps[4]).idle == 1);
      std::uint64_t idle = 0;
      for (const auto& [ep, st] : p.all_stats()) idle += st.idle;
      CHECK(idle == 3);
      sc.cancel();
    });
  });
  config none;
  none.max_idle_connections = 0;  // keep nothing idle: every release closes
  with_pool(ring_mode::automatic, none, [](pool& p, test_server& server) -> task<void> {
    result<connection> c = co_await p.acquire(server.where());
    REQUIRE(c.has_value());
    p.release(std::move(*c));
    CHECK(p.stats(server.where()).closed_for(close_reason::idle_cap) == 1);
    CHECK(p.stats(server.where()).idle == 0);
  });
  config bad;
  bad.max_idle_connections = -1;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("max_idle_connections"),
                       std::invalid_argument);
}

TEST_CASE("pool: acquire_timeout bounds the wait at the limit") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    c.acquire_timeout = 10ms;
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held.has_value());
      result<connection> second = co_await p.acquire(ep);
      CHECK(second.error() == errc::acquire_timeout);
      p.release(std::move(*held));
      result<connection> third = co_await p.acquire(ep);
      CHECK(third.has_value());
      p.release(std::move(*third));
      CHECK(server.peak == 1);
    });
  });
}

TEST_CASE("pool: waiters at the limit share the part's one timer for acquire_timeout") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    c.acquire_timeout = 5s;  // long: every waiter below is served, none times out
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      CHECK(co_await echo_on(p, ep, "warm") == "warm");
      auto sqes = [] { return shard::current()->counters().sqes; };
      constexpr int waiters = 16;
      int served = 0;
      std::uint64_t start = 0;
      co_await scoped([&](scope& sc) -> task<void> {
        result<connection> held = co_await p.acquire(ep);
        REQUIRE(held.has_value());
        start = sqes();
        // Each waiter takes the connection in turn and hands it straight back: no I/O of its
        // own, so every SQE counted below is the waits'.
        auto wait_then_release = [&p, &ep, &served]() -> task<void> {
          result<connection> got = co_await p.acquire(ep);
          REQUIRE(got.has_value());
          ++served;
          p.release(std::move(*got));
        };
        for (int i = 0; i < waiters; ++i) sc.spawn(wait_then_release());
        (void)co_await io::nop();  // they all queue
        CHECK(p.stats(ep).waiting == waiters);
        p.release(std::move(*held));
        co_await sc.join();
      });
      const std::uint64_t spent = sqes() - start;
      CAPTURE(spent);
      CHECK(served == waiters);
      // One timer for the part (armed once, or moved once), not a TIMEOUT and a
      // TIMEOUT_REMOVE a wait: 2 x 16 SQEs before.
      CHECK(spent <= 4);
      CHECK(p.stats(ep).acquire_timeouts == 0);
      CHECK(p.stats(ep).total_created == 1);
      check_stats_add_up(p);
    });
  });
}

TEST_CASE("pool: a waiter's acquire_timeout ends it in time while others are still served") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    c.acquire_timeout = 50ms;
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held.has_value());
      std::vector<std::error_code> errors;
      std::vector<std::chrono::steady_clock::duration> waited;
      co_await scoped([&](scope& sc) -> task<void> {
        auto waiter = [&p, &ep, &errors, &waited]() -> task<void> {
          // The pool's clock: the loop's time, read once a turn (acquire_timeout runs from it).
          const auto began = shard::now();
          result<connection> got = co_await p.acquire(ep);
          waited.push_back(shard::now() - began);
          errors.push_back(got ? std::error_code{} : got.error());
          if (got) p.release(std::move(*got));
        };
        for (int i = 0; i < 3; ++i) sc.spawn(waiter());
        co_await sc.join();
      });
      // Nobody gave the connection back: all three end at their deadline, none much later
      // (the part's timer fires once for the three; their deadlines are microseconds apart).
      REQUIRE(errors.size() == 3);
      for (std::size_t i = 0; i < errors.size(); ++i) {
        CAPTURE(i);
        CHECK(errors[i] == errc::acquire_timeout);
        CHECK(waited[i] >= 50ms);
        CHECK(waited[i] < 2s);
      }
      CHECK(p.stats(ep).acquire_timeouts == 3);
      CHECK(p.stats(ep).waiting == 0);
      // The one still held goes back and is lent again: the pool is sound after the timeouts.
      p.release(std::move(*held));
      result<connection> again = co_await p.acquire(ep);
      CHECK(again.has_value());
      if (again) p.release(std::move(*again));
      check_stats_add_up(p);
    });
  });
}

TEST_CASE("pool: cancelled during connect, during use, while waiting") {
  for_each_ring_mode([](ring_mode m) {
    // A listener whose backlog is full: connects to it hang.
    testing::full_backlog full;
    const endpoint hanging = full.where();
    config c;
    c.max_connections_per_endpoint = 1;
    c.connect_timeout.reset();
    with_pool(m, c, [&hanging](pool& p, test_server& server) -> task<void> {
      result<std::string> r = co_await with_timeout(5ms, echo_on(p, hanging, "x"));
      CHECK(r.error() == errc::timed_out);
      CHECK(p.stats(hanging).total_created == 0);
      CHECK(p.stats(hanging).errors == 0);  // a cancel is not a connection error

      const endpoint ep = server.where();
      r = co_await with_timeout(5ms, p.with_connection(ep, [](flow&) -> task<result<std::string>> {
        REQUIRE_FALSE(co_await sleep_for(1h));  // cancelled
        co_return fail(std::make_error_code(std::errc::operation_canceled));
      }));
      CHECK(r.error() == errc::timed_out);
      CHECK(p.stats(ep).total_closed == 1);  // its state is unknown: closed, not reused

      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held.has_value());
      result<connection> waiting = co_await with_timeout(5ms, p.acquire(ep));
      CHECK(waiting.error() == errc::timed_out);
      p.release(std::move(*held));
      CHECK(co_await echo_on(p, ep, "still fine") == "still fine");
    });
  });
}

TEST_CASE("pool: close_pool waits for leases; then acquisitions get pool_closed") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held.has_value());
      bool returned = false;
      result<connection> waiter_result;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, const endpoint& ep, result<connection>& out) -> task<void> {
          out = co_await p.acquire(ep);  // waits at the limit, then the pool closes
        }(p, ep, waiter_result));
        sc.spawn([](pool& p, connection c, bool& returned) -> task<void> {
          REQUIRE(co_await sleep_for(5ms));
          returned = true;
          p.release(std::move(c));
        }(p, std::move(*held), returned));
        co_await io::nop();
        co_await p.close_pool();
        CHECK(returned);  // close_pool waited for the lease
        co_await sc.join();
      });
      CHECK(waiter_result.error() == errc::pool_closed);
      CHECK((co_await p.acquire(ep)).error() == errc::pool_closed);
      CHECK(p.stats(ep).total_closed == 1);
      CHECK(server.open_now >= 0);
    });
  });
}

TEST_CASE("pool: close_idle_connections and close_all_connections") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      REQUIRE(co_await p.warm_endpoint(ep, 3));
      CHECK(p.stats(ep).idle == 3);
      CHECK(p.stats(ep).total_created == 3);
      p.close_idle_connections(ep);
      CHECK(p.stats(ep).idle == 0);
      CHECK(p.stats(ep).total_closed == 3);

      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held.has_value());
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, connection c) -> task<void> {
          REQUIRE(co_await sleep_for(2ms));
          p.release(std::move(c));  // closed, not kept: close_all is in progress
        }(p, std::move(*held)));
        co_await p.close_all_connections(ep);
        CHECK(p.stats(ep).active == 0);
        CHECK(p.stats(ep).idle == 0);
        co_await sc.join();
      });
      CHECK(p.stats(ep).total_closed == 4);
      CHECK(co_await echo_on(p, ep, "reopened") == "reopened");  // the pool still works
    });
  });
}

TEST_CASE("pool: faults: refused, connect timeout, silent server, unresolvable name") {
  testing::start_name_helper();
  for_each_ring_mode([](ring_mode m) {
    testing::refusing_port refusing;
    testing::full_backlog full;
    config c;
    c.connect_timeout = 20ms;
    with_pool(m, c, [&](pool& p, test_server& server) -> task<void> {
      const endpoint refused{refusing.address.host(), refusing.address.port()};
      result<std::string> r = co_await echo_on(p, refused, "x");
      CHECK(r.error() == std::errc::connection_refused);
      CHECK(describe(r.error(), refused, "connect").starts_with(refused.to_string()));
      CHECK(p.stats(refused).errors == 1);
      CHECK(p.last_error(refused) == refused.to_string() + ": connect: " +
                                         r.error().message());

      const endpoint hanging = full.where();
      r = co_await echo_on(p, hanging, "x");
      CHECK(r.error() == errc::connect_timeout);
      CHECK(p.last_error(hanging).starts_with(hanging.to_string() +
                                              ": connect: no answer within connect_timeout ("));

      server.silent = true;  // accepts, never answers: the caller's deadline ends it
      r = co_await with_timeout(10ms, echo_on(p, server.where(), "x"));
      CHECK(r.error() == errc::timed_out);
      server.silent = false;

      // A host that is no name (an empty label): refused before any I/O, naming it.
      const endpoint nowhere{"no..such.host", 80};
      std::string refused_with;
      try {
        (void)co_await p.acquire(nowhere);
      } catch (const std::invalid_argument& e) {
        refused_with = e.what();
      }
      CHECK(refused_with == "conpool: endpoint no..such.host:80: host \"no..such.host\" has an "
                            "empty label");
      CHECK(p.last_error(server.where()).empty());
    });
  });
}

TEST_CASE("pool: host names resolve off the shard; IPv6 literals; every address is tried") {
  testing::start_name_helper();
  // Only where /etc/hosts names localhost: a test never sends a DNS query.
  const bool hosts_has_localhost = [] {
    std::ifstream hosts("/etc/hosts");
    for (std::string line; std::getline(hosts, line);) {
      std::istringstream words(line.substr(0, line.find('#')));
      std::string word;
      words >> word;  // the address
      while (words >> word) {
        if (word == "localhost") return true;
      }
    }
    return false;
  }();
  if (!hosts_has_localhost) MESSAGE("/etc/hosts has no localhost: the named-host part is skipped");
  for_each_ring_mode([hosts_has_localhost](ring_mode m) {
    if (hosts_has_localhost) {
      with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
        const endpoint named{"localhost", server.where().port};
        CHECK(co_await echo_on(p, named, "by name") == "by name");
        CHECK(co_await echo_on(p, named, "cached") == "cached");
        CHECK(p.stats(named).total_created == 1);
      });
    }
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      result<listener> l6 = listener::open(socket_address::loopback(0, true));
      if (!l6) {
        MESSAGE("no IPv6 loopback here: skipped");
        co_return;
      }
      test_server server6(true);
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn(server6.run(sc));
        pool p;
        const endpoint ep = endpoint::parse("tcp://[::1]:" + std::to_string(server6.where().port));
        CHECK(co_await echo_on(p, ep, "v6") == "v6");
        co_await p.close_pool();
      });
    }());
  });
}

TEST_CASE("pool: bad config and bad endpoints are refused before any I/O, naming the field") {
  shard s;
  auto bad = [](auto mutate) {
    config c;
    mutate(c);
    return c;
  };
  CHECK_THROWS_WITH_AS(pool(bad([](config& c) { c.max_connections_per_endpoint = 0; })),
                       "conpool::config::max_connections_per_endpoint: 0 must be at least 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH(pool(bad([](config& c) { c.max_idle_time = -1s; })),
                    doctest::Contains("conpool::config::max_idle_time: -1"));
  CHECK_THROWS_WITH(pool(bad([](config& c) { c.max_connection_uses = 0; })),
                    doctest::Contains("max_connection_uses"));
  CHECK_THROWS_WITH(pool(bad([](config& c) { c.connect_timeout = 0s; })),
                    doctest::Contains("connect_timeout"));
  CHECK_THROWS_WITH(pool(bad([](config& c) { c.acquire_timeout = -1s; })),
                    doctest::Contains("acquire_timeout"));
  // Durations the pool's nanosecond clock cannot hold: refused, not silently overflowed.
  using seconds = std::chrono::duration<double>;
  const double inf = std::numeric_limits<double>::infinity();
  for (const double v : {inf, 1e300, 1e12}) {
    CAPTURE(v);
    CHECK_THROWS_WITH(pool(bad([v](config& c) { c.max_idle_time = seconds(v); })),
                      doctest::Contains("conpool::config::max_idle_time: "));
    CHECK_THROWS_WITH(pool(bad([v](config& c) { c.max_connection_lifetime = seconds(v); })),
                      doctest::Contains("seconds is more than the pool can count"));
    CHECK_THROWS_WITH(pool(bad([v](config& c) { c.connect_timeout = seconds(v); })),
                      doctest::Contains("conpool::config::connect_timeout: "));
    CHECK_THROWS_WITH(pool(bad([v](config& c) { c.acquire_timeout = seconds(v); })),
                      doctest::Contains("conpool::config::acquire_timeout: "));
    CHECK_THROWS_WITH(pool(bad([v](config& c) { c.dns_ttl = seconds(v); })),
                      doctest::Contains("conpool::config::dns_ttl: "));
  }
  CHECK_THROWS_WITH(pool(bad([inf](config& c) { c.max_idle_time = seconds(inf); })),
                    "conpool::config::max_idle_time: inf seconds is more than the pool can count "
                    "(at most 1e+09, ~31 years; leave the option unset for no bound where it "
                    "has one)");
  CHECK_NOTHROW(bad([](config& c) { c.max_connection_lifetime = seconds(1e9); }).validate());
  CHECK_THROWS_WITH(pool(bad([](config& c) { c.connection_attempt_delay = 5s; })),
                    "conpool::config::connection_attempt_delay: 5 seconds must be from 0.01 to 2 "
                    "(RFC 8305)");
  s.run([]() -> task<void> {
    pool p;
    CHECK_THROWS_WITH(co_await p.acquire(endpoint{"", 80}), doctest::Contains("empty host"));
    CHECK_THROWS_WITH(co_await p.acquire(endpoint{"127.0.0.1", 0}), doctest::Contains("port 0"));
    endpoint tls = endpoint::parse("tls://127.0.0.1:443");
    CHECK_THROWS_WITH(co_await p.acquire(tls), doctest::Contains("127.0.0.1:443 (tls): TLS without a context"));
    CHECK(p.all_stats().empty());
  }());
}

TEST_CASE("pool: warm_endpoint and the circuit breaker") {
  for_each_ring_mode([](ring_mode m) {
    testing::refusing_port refusing;
    config c;
    c.connect_backoff.reset();  // the breaker alone decides here (backoff: dead_upstream_test)
    with_pool(m, c, [&](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      REQUIRE(co_await p.warm_endpoint(ep, 4));
      CHECK(co_await turns_until([&] { return server.accepted == 4; }));
      CHECK(p.stats(ep).idle == 4);
      CHECK(co_await p.warm_endpoint(ep, 2));  // already warm enough
      CHECK(server.accepted == 4);

      const endpoint down{refusing.address.host(), refusing.address.port()};
      auto call = [&p, &down]() {
        return p.with_circuit_breaker(down, 2, 20ms, [](flow& f) { return echo_once(f, "x"); });
      };
      CHECK((co_await call()).error() == std::errc::connection_refused);
      CHECK((co_await call()).error() == std::errc::connection_refused);  // opens now
      CHECK((co_await call()).error() == errc::circuit_open);             // fails fast
      CHECK(p.stats(down).errors == 2);
      REQUIRE(co_await sleep_for(25ms));
      CHECK((co_await call()).error() == std::errc::connection_refused);  // the half-open trial
      CHECK((co_await call()).error() == errc::circuit_open);             // open again

      auto good = [&p, &ep]() {
        return p.with_circuit_breaker(ep, 2, 20ms, [](flow& f) { return echo_once(f, "ok"); });
      };
      CHECK(co_await good() == "ok");
      CHECK_THROWS_AS(
          co_await p.with_circuit_breaker(ep, 0, 1s, [](flow&) -> task<void> { co_return; }),
          std::invalid_argument);
    });
  });
}

TEST_CASE("pool: a caller cancelled during a health check costs one connection, not all") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.health_check = [](flow&) -> task<bool> {
      co_return (co_await sleep_for(1h)).has_value();  // cut by the caller's deadline
    };
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      REQUIRE(co_await p.warm_endpoint(ep, 3));
      result<connection> r = co_await with_timeout(2ms, p.acquire(ep));
      CHECK(r.error() == errc::timed_out);
      CHECK(p.stats(ep).total_closed == 1);
      CHECK(p.stats(ep).idle == 2);
    });
  });
}

TEST_CASE("pool: warm_endpoint called 16k times in a loop does not grow the stack") {
  // Each call finds the connection warm already and completes without suspending: at -O0 the
  // chain of tasks must still unwind through the resume loop, not the stack.
  with_pool(ring_mode::automatic, default_config(),
            [](pool& p, test_server& server) -> task<void> {
              const endpoint ep = server.where();
              for (int i = 0; i < 16 * 1024; ++i) REQUIRE(co_await p.warm_endpoint(ep, 1));
              CHECK(p.stats(ep).idle == 1);
              CHECK(server.accepted == 1);
            });
}

TEST_CASE("pool: warmed connections count no use until handed out") {
  shard s;
  s.run([]() -> task<void> {
    test_server server;
    co_await scoped([&](scope& sc) -> task<void> {
      sc.spawn(server.run(sc));
      config c;
      c.max_connection_uses = 1;
      pool p(c);
      REQUIRE(co_await p.warm_endpoint(server.where(), 2));
      CHECK(p.stats(server.where()).idle == 2);  // not retired by its own warm-up
      result<connection> lease = co_await p.acquire(server.where());
      REQUIRE(lease.has_value());
      CHECK(lease->use_count() == 1);
      p.release(std::move(*lease));
      co_await p.close_pool();
      check_stats_add_up(p);
    });
  }());
}

TEST_CASE("pool: a connection released and taken again in the same turn costs no watcher SQE") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      CHECK(co_await echo_on(p, ep, "warm") == "warm");
      (void)co_await io::nop();  // a turn ends: the idle connection's watcher is armed
      constexpr int rounds = 20;
      auto sqes = [] { return shard::current()->counters().sqes; };

      // The baseline: one lease for every echo.
      std::uint64_t start = sqes();
      {
        result<connection> c = co_await p.acquire(ep);
        REQUIRE(c.has_value());
        for (int i = 0; i < rounds; ++i) CHECK(co_await echo_once(c->flow(), "x") == "x");
        p.release(std::move(*c));
      }
      (void)co_await io::nop();
      const std::uint64_t held = sqes() - start;

      // A lease per echo, released and re-acquired in the same turn: the watcher is armed only
      // when a turn ends with the connection idle, so no arm and no cancel per round.
      start = sqes();
      for (int i = 0; i < rounds; ++i) {
        result<connection> c = co_await p.acquire(ep);
        REQUIRE(c.has_value());
        CHECK(co_await echo_once(c->flow(), "x") == "x");
        p.release(std::move(*c));
      }
      (void)co_await io::nop();
      const std::uint64_t per_echo = sqes() - start;
      CAPTURE(held);
      CAPTURE(per_echo);
      CHECK(per_echo <= held + 2);
      CHECK(p.stats(ep).total_created == 1);
      check_stats_add_up(p);

      // The watcher still guards the idle connection once the turn is over.
      co_await server.apply(test_server::act::fin);
      CHECK(co_await turns_until([&] { return p.stats(ep).idle == 0; }));
    });
  });
}

TEST_CASE("pool: a Unix domain socket endpoint is pooled like TCP") {
  for_each_ring_mode([](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([]() -> task<void> {
      const std::string name = "@conpool-test-" + std::to_string(::getpid());
      std::optional<listener> l = *listener::open(*socket_address::unix_socket(name));
      CHECK(l->address().to_string() == "unix://" + name);
      const endpoint ep = endpoint::parse("unix://" + name);
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](listener& l) -> task<void> {
          (void)co_await testing::echo_server(l, 1);
        }(*l));
        pool p;
        for (int i = 0; i < 10; ++i) {
          CHECK(co_await p.with_connection(ep, [](flow& f) { return echo_once(f, "unix"); }) ==
                "unix");
        }
        const endpoint_stats st = p.stats(ep);
        CHECK(st.total_created == 1);
        CHECK(st.total_reused == 9);
        CHECK(p.all_stats().front().first.to_string() == "unix://" + name);
        co_await p.close_pool();
        check_stats_add_up(p);
        co_await sc.join();  // the server ends with its one connection
      });
      l.reset();
      // Nothing listens there any more: the connect fails, naming the socket.
      pool p;
      result<connection> gone = co_await p.acquire(ep);
      CHECK(gone.error() == std::errc::connection_refused);
      CHECK(p.last_error(ep).starts_with("unix://" + name + ": connect: "));
      co_await p.close_pool();
    }());
  });
}
