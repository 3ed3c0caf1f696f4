// SPDX-License-Identifier: MIT
// One pool over a runtime of 2 to 4 shards: the per-endpoint limit across shards, hand-offs
// both ways (a steal, a release to a waiter on another shard), stats read from a thread that is
// no shard, and close_pool across shards. The server is the bench's echo server on a thread of
// its own, counting the connections it sees.
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <latch>
#include <map>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "../tools/bench/echo_server.hpp"
#include "support/support.hpp"

namespace conpool::testing {
namespace {

using namespace std::chrono_literals;

// One echo of `text` on `f`, checked byte for byte.
task<result<void>> echo(flow& f, std::string_view text) {
  if (result<void> w = co_await f.write_all(text); !w) co_return fail(w.error());
  std::string back(text.size(), '\0');
  if (result<void> r = co_await f.read_exact(std::as_writable_bytes(std::span(back))); !r) {
    co_return fail(r.error());
  }
  if (back != text) co_return fail(errc::unhealthy);
  co_return result<void>{};
}

config limit(int n) {
  config c = default_config();
  c.max_connections_per_endpoint = n;
  return c;
}

endpoint at(const bench::echo_server& srv, std::size_t i = 0) {
  return {"127.0.0.1", srv.ports()[i]};
}

}  // namespace

TEST_CASE("10,000 acquisitions over 2 to 4 shards never exceed a limit of 4") {
  for (const unsigned shards : {2U, 3U, 4U}) {
    for (const ring_mode mode : ring_modes()) {
      CAPTURE(shards);
      CAPTURE(mode);
      fd_leak_check leaks;
      bench::echo_server srv(1);
      const endpoint ep = at(srv);
      runtime rt({.shards = shards, .shard = {.mode = mode}});
      {
        pool p(rt, limit(4));
        constexpr int total = 10'000;
        constexpr int tasks_per_shard = 8;  // more waiters than connections on every shard
        std::atomic<int> done{0};
        std::atomic<int> failed{0};
        // A thread that is no shard reads the metrics all along (a Prometheus scrape):
        // counts never go back, and the exposition is whole every time.
        std::atomic<bool> stop{false};
        std::atomic<long> scrapes{0};
        std::thread scraper([&] {
          std::uint64_t last_leases = 0;
          while (!stop.load()) {
            const pool_histograms h = p.histograms();
            CHECK(h.lease_hold.count() >= last_leases);
            CHECK(h.lease_hold.count() <= static_cast<std::uint64_t>(total));
            last_leases = h.lease_hold.count();
            const std::string page = prometheus_text(p);
            CHECK(page.find("conpool_lease_hold_seconds_count ") != std::string::npos);
            scrapes.fetch_add(1);
          }
        });
        rt.run([&](unsigned shard) -> task<void> {
          const int mine = total / static_cast<int>(shards) +
                           (shard < total % shards ? 1 : 0);
          co_await scoped([&](scope& sc) -> task<void> {
            for (int t = 0; t < tasks_per_shard; ++t) {
              const int n = mine / tasks_per_shard + (t < mine % tasks_per_shard ? 1 : 0);
              sc.spawn([](pool& p, const endpoint& ep, int n, std::atomic<int>& done,
                          std::atomic<int>& failed) -> task<void> {
                for (int i = 0; i < n; ++i) {
                  result<void> r = co_await p.with_connection(
                      ep, [](flow& f) -> task<result<void>> { return echo(f, "ping-pong"); });
                  (r ? done : failed).fetch_add(1);
                }
              }(p, ep, n, done, failed));
            }
            co_await sc.join();
          });
        });
        stop.store(true);
        scraper.join();
        CHECK(scrapes.load() > 0);
        CHECK(done.load() == total);
        CHECK(failed.load() == 0);
        CHECK(srv.accepted() <= 4);
        CHECK(srv.peak() <= 4);
        const endpoint_stats st = p.stats(ep);
        CHECK(st.total_created + st.total_reused == total);  // every acquisition counted once
        CHECK(st.total_created == st.total_closed);          // the run's end closed the pool
        CHECK(st.active == 0);
        CHECK(st.idle == 0);
        CHECK(st.errors == 0);
        CHECK(st.opening == 0);
        CHECK(st.waiting == 0);
        // Every acquisition waited (0 for a hit) and held a lease once; every open was timed.
        const pool_histograms h = p.histograms();
        CHECK(h.acquire_wait.count() == static_cast<std::uint64_t>(total));
        CHECK(h.lease_hold.count() == static_cast<std::uint64_t>(total));
        CHECK(h.connect.count() == st.total_created);
      }
    }
  }
}

TEST_CASE("endpoint handles: one per endpoint for every shard, used on any shard, limit held") {
  for (const unsigned shards : {2U, 4U}) {
    CAPTURE(shards);
    fd_leak_check leaks;
    bench::echo_server srv(1);
    const endpoint ep = at(srv);
    runtime rt({.shards = shards});
    {
      pool p(rt, limit(3));
      std::vector<endpoint_handle> made(shards);
      std::latch all_made(static_cast<std::ptrdiff_t>(shards));
      std::atomic<int> done{0};
      std::atomic<int> failed{0};
      rt.run([&](unsigned shard) -> task<void> {
        made[shard] = p.handle(ep);
        all_made.arrive_and_wait();  // no I/O pending yet: blocking the loop here is harmless
        // The handle another shard made: the same entry, used here.
        const endpoint_handle h = made[(shard + 1) % shards];
        CHECK(h == made[shard]);
        CHECK(h.endpoint() == ep);
        co_await scoped([&](scope& sc) -> task<void> {
          for (int t = 0; t < 4; ++t) {
            sc.spawn([](pool& p, endpoint_handle h, std::atomic<int>& done,
                        std::atomic<int>& failed) -> task<void> {
              for (int i = 0; i < 250; ++i) {
                result<void> r = co_await p.with_connection(
                    h, [](flow& f) -> task<result<void>> { return echo(f, "by handle"); });
                (r ? done : failed).fetch_add(1);
              }
            }(p, h, done, failed));
          }
          co_await sc.join();
        });
      });
      CHECK(done.load() == static_cast<int>(shards) * 1000);
      CHECK(failed.load() == 0);
      CHECK(srv.peak() <= 3);
      const endpoint_stats st = p.stats(made[0]);
      CHECK(st.total_created + st.total_reused == static_cast<std::uint64_t>(shards) * 1000);
      CHECK(p.stats(ep).total_created == st.total_created);
    }
  }
}

TEST_CASE("max_idle_connections over 2 shards: each keeps its share, the oldest idle ones go") {
  for (const ring_mode mode : ring_modes()) {
    CAPTURE(mode);
    fd_leak_check leaks;
    bench::echo_server srv(3);
    runtime rt({.shards = 2, .shard = {.mode = mode}});
    config c = default_config();
    c.max_idle_connections = 2;  // a share of 1 a shard
    pool p(rt, c);
    std::atomic<int> failed{0};
    rt.run([&](unsigned) -> task<void> {
      for (std::size_t i = 0; i < 3; ++i) {
        result<void> r = co_await p.with_connection(
            at(srv, i), [](flow& f) -> task<result<void>> { return echo(f, "capped"); });
        if (!r) failed.fetch_add(1);
      }
      co_await turns();
    });
    CHECK(failed.load() == 0);
    std::uint64_t idle = 0;
    std::uint64_t capped = 0;
    for (const auto& [ep, st] : p.all_stats()) {
      idle += st.idle;
      capped += st.closed_for(close_reason::idle_cap);
    }
    CHECK(idle == 0);    // the run's end closed the pool: what was idle closed then
    CHECK(capped == 4);  // per shard: 3 given back, 1 kept, 2 closed as the oldest
    CHECK(p.stats(at(srv, 2)).closed_for(close_reason::idle_cap) == 0);  // the newest kept
  }
}

TEST_CASE("a shard at the limit steals an idle connection from another") {
  fd_leak_check leaks;
  bench::echo_server srv(1);
  const endpoint ep = at(srv);
  runtime rt({.shards = 2});
  pool p(rt, limit(1));
  rt.run([&](unsigned shard) -> task<void> {
    if (shard == 0) {
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      CHECK(co_await echo(c->flow(), "first"));
      p.release(std::move(*c));  // idle on shard 0
      co_await tell(rt, 1);
      CHECK(co_await heard() == 2);  // shard 1 is done
    } else {
      (void)co_await heard();
      result<connection> c = co_await p.acquire(ep);  // budget spent: from shard 0
      REQUIRE(c);
      CHECK(c->use_count() == 2);
      CHECK(co_await echo(c->flow(), "second, on shard 1"));
      p.release(std::move(*c));
      co_await tell(rt, 0, 2);
    }
  });
  CHECK(srv.accepted() == 1);
  const endpoint_stats st = p.stats(ep);
  CHECK(st.total_created == 1);
  CHECK(st.total_reused == 1);
  CHECK(st.total_closed == 1);
}

TEST_CASE("the idle connection is stolen back and forth, 50 times") {
  // Each shard asks again after its last ask was answered by a connection, not by `none`.
  fd_leak_check leaks;
  bench::echo_server srv(1);
  const endpoint ep = at(srv);
  runtime rt({.shards = 2});
  pool p(rt, limit(1));
  constexpr int rounds = 50;
  rt.run([&](unsigned shard) -> task<void> {
    const unsigned other = 1 - shard;
    if (shard == 0) {
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      p.release(std::move(*c));
      co_await tell(rt, other);
    }
    for (int i = 0; i < rounds; ++i) {
      (void)co_await heard();  // idle on the other shard now
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      CHECK(co_await echo(c->flow(), "bounce"));
      p.release(std::move(*c));
      if (shard == 1 || i + 1 < rounds) co_await tell(rt, other);
    }
  });
  CHECK(srv.accepted() == 1);
  CHECK(p.stats(ep).total_reused == 2 * rounds);
}

TEST_CASE("a release goes to a task waiting on another shard") {
  fd_leak_check leaks;
  bench::echo_server srv(1);
  const endpoint ep = at(srv);
  runtime rt({.shards = 2});
  pool p(rt, limit(1));
  rt.run([&](unsigned shard) -> task<void> {
    if (shard == 0) {
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      co_await tell(rt, 1);
      (void)co_await heard();  // shard 1 waits for a connection now
      CHECK(co_await echo(c->flow(), "mine first"));
      p.release(std::move(*c));  // straight to shard 1's waiter
    } else {
      (void)co_await heard();
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, const endpoint& ep) -> task<void> {
          result<connection> c = co_await p.acquire(ep);
          REQUIRE(c);
          CHECK(c->use_count() == 2);
          CHECK(co_await echo(c->flow(), "handed over"));
          p.release(std::move(*c));
        }(p, ep));
        co_await turns();  // the task waits at the limit
        co_await tell(rt, 0);
        co_await sc.join();
      });
    }
  });
  CHECK(srv.accepted() == 1);
  const endpoint_stats st = p.stats(ep);
  CHECK(st.total_created == 1);
  CHECK(st.total_reused == 1);
  CHECK(st.handoffs == 1);  // the connection went from shard 0 to shard 1
}

TEST_CASE("a lease is given back on the shard that took it") {
  bench::echo_server srv(1);
  const endpoint ep = at(srv);
  runtime rt({.shards = 2});
  pool p(rt, limit(2));
  connection travelling;
  rt.run([&](unsigned shard) -> task<void> {
    if (shard == 0) {
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      travelling = std::move(*c);
      co_await tell(rt, 1);
      (void)co_await heard();
      p.release(std::move(travelling));
    } else {
      (void)co_await heard();
      CHECK_THROWS_WITH_AS(p.release(std::move(travelling)),
                           "conpool::pool::release: the lease belongs to shard 0; give it back "
                           "there",
                           std::invalid_argument);
      co_await tell(rt, 0);
    }
  });
  CHECK(p.stats(ep).total_closed == 1);
}

TEST_CASE("4,000 endpoints added on 2 shards while a thread that is no shard reads them") {
  runtime rt({.shards = 2});
  pool p(rt);
  std::atomic<bool> adding{true};
  std::atomic<std::size_t> seen{0};
  // The reader: all_stats and stats(ep) through every table the writers publish and retire.
  std::thread reader([&] {
    while (adding.load()) {
      const auto all = p.all_stats();
      seen.store(std::max(seen.load(), all.size()));
      if (!all.empty()) CHECK(p.stats(all.back().first).total_created == 0);
    }
  });
  rt.run([&](unsigned shard) -> task<void> {
    for (int i = 0; i < 2000; ++i) {
      // Shard 0: ports 1..2000 on 127.0.0.1; shard 1: the same on 127.0.0.2.
      const endpoint ep{shard == 0 ? "127.0.0.1" : "127.0.0.2", static_cast<std::uint16_t>(i + 1)};
      const endpoint_handle h = p.handle(ep);
      CHECK(h.endpoint() == ep);
      if (i % 100 == 0) co_await turns();  // quiescent points: retired tables can be freed
    }
  });
  adding.store(false);
  reader.join();
  const auto all = p.all_stats();
  CHECK(all.size() == 4000);
  std::set<std::string> distinct;
  for (const auto& [ep, st] : all) distinct.insert(ep.to_string());
  CHECK(distinct.size() == 4000);
  CHECK(seen.load() <= 4000);
}

TEST_CASE("endpoints used and reclaimed on 2 shards while a thread that is no shard reads them") {
  fd_leak_check leaks;
  bench::echo_server srv(4);
  runtime rt({.shards = 2});
  config c = limit(2);
  c.endpoint_idle_timeout = 20ms;
  c.max_idle_time = 10ms;
  pool p(rt, c);
  std::atomic<bool> running{true};
  std::atomic<long> reads{0};
  std::thread reader([&] {
    std::uint64_t created = 0;
    while (running.load()) {
      for (const auto& [ep, st] : p.all_stats()) CHECK(st.total_created <= 2);
      (void)p.stats(at(srv, 1));
      const endpoint_stats t = p.totals();
      CHECK(t.total_created >= created);  // removed endpoints' totals are kept
      created = t.total_created;
      reads.fetch_add(1);
    }
  });
  std::atomic<int> echoed{0};
  rt.run([&](unsigned shard) -> task<void> {
    for (int round = 0; round < 3; ++round) {
      // Echo servers on both shards (their connections cross between them)...
      for (std::size_t i = 0; i < srv.ports().size(); ++i) {
        result<void> r = co_await p.with_connection(
            at(srv, (i + shard) % srv.ports().size()),
            [](flow& f) -> task<result<void>> { return echo(f, "reclaim"); });
        CHECK(r);
        if (r) echoed.fetch_add(1);
      }
      // ... and 500 endpoints a shard made by handles and dropped.
      for (int i = 0; i < 500; ++i) {
        (void)p.handle(endpoint{shard == 0 ? "127.0.0.1" : "127.0.0.2",
                                static_cast<std::uint16_t>(i + 1)});
      }
      // All of them go once unused: connections expire, then the endpoints on both shards.
      for (int i = 0; i < 1000 && p.endpoints() != 0; ++i) (void)co_await sleep_for(5ms);
      CHECK(p.endpoints() == 0);
    }
  });
  running.store(false);
  reader.join();
  CHECK(reads.load() > 0);
  CHECK(p.all_stats().empty());
  const endpoint_stats t = p.totals();
  CHECK(t.total_created == t.total_closed);
  CHECK(t.total_created + t.total_reused == static_cast<std::uint64_t>(echoed.load()));
  CHECK(t.total_created <= 3 * 2 * srv.ports().size());
}

TEST_CASE("stats read in a tight loop from a thread that is no shard") {
  fd_leak_check leaks;
  bench::echo_server srv(8);  // eight endpoints: the table grows while it is read
  runtime rt({.shards = 2});
  pool p(rt, limit(2));
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::thread metrics([&] {
    // Each shard's counters are read as of its own moment, so gauges summed over shards may
    // be off by a connection in hand-over; cumulative counters never go back.
    std::map<std::uint16_t, endpoint_stats> last;
    while (!stop.load()) {
      for (const auto& [ep, st] : p.all_stats()) {
        endpoint_stats& before = last[ep.port];
        CHECK(st.total_created <= 2);  // nothing closes before the run's end
        CHECK(st.total_created >= before.total_created);
        CHECK(st.total_reused >= before.total_reused);
        before = st;
      }
      (void)p.stats(at(srv, 3));
      reads.fetch_add(1);
    }
  });
  rt.run([&](unsigned shard) -> task<void> {
    for (int round = 0; round < 50; ++round) {
      for (std::size_t i = 0; i < srv.ports().size(); ++i) {
        const endpoint ep = at(srv, (i + shard) % srv.ports().size());
        result<void> r = co_await p.with_connection(
            ep, [](flow& f) -> task<result<void>> { return echo(f, "stats"); });
        CHECK(r);
      }
    }
  });
  stop.store(true);
  metrics.join();
  CHECK(reads.load() > 0);
  const auto all = p.all_stats();
  CHECK(all.size() == 8);
  std::uint64_t acquisitions = 0;
  for (const auto& [ep, st] : all) {
    acquisitions += st.total_created + st.total_reused;
    CHECK(st.total_created == st.total_closed);
  }
  CHECK(acquisitions == 2 * 50 * 8);
}

TEST_CASE("close_pool across shards: a waiter on one, the lease on another") {
  fd_leak_check leaks;
  bench::echo_server srv(1);
  const endpoint ep = at(srv);
  runtime rt({.shards = 2});
  pool p(rt, limit(1));
  std::error_code waiter_got;
  bool closed_returned = false;
  rt.run([&](unsigned shard) -> task<void> {
    if (shard == 0) {
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c);
      co_await tell(rt, 1);
      (void)co_await heard();  // shard 1 waits, and is closing the pool
      CHECK(co_await echo(c->flow(), "still usable"));
      p.release(std::move(*c));  // closed: the pool is closing
      result<connection> again = co_await p.acquire(ep);
      REQUIRE_FALSE(again);
      CHECK(again.error() == errc::pool_closed);
    } else {
      (void)co_await heard();
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, const endpoint& ep, std::error_code& got) -> task<void> {
          result<connection> c = co_await p.acquire(ep);
          REQUIRE_FALSE(c);
          got = c.error();
        }(p, ep, waiter_got));
        co_await turns();  // it waits for shard 0's connection
        sc.spawn([](pool& p, bool& returned) -> task<void> {
          co_await p.close_pool();
          returned = true;
        }(p, closed_returned));
        co_await turns();
        CHECK(waiter_got == errc::pool_closed);
        CHECK_FALSE(closed_returned);  // shard 0's lease is still out
        co_await tell(rt, 0);
        co_await sc.join();
      });
    }
  });
  CHECK(closed_returned);
  const endpoint_stats st = p.stats(ep);
  CHECK(st.total_created == 1);
  CHECK(st.total_closed == 1);
  CHECK(st.active + st.idle == 0);
}

TEST_CASE("host threads with their own epoll loops are shards of one group sharing one pool") {
  // Three threads the host owns, each driving its shard from a plain epoll loop through
  // notify_fd() and poll(); one pool with a limit of 2 across them, against a real server.
  for (const ring_mode mode : ring_modes()) {
    CAPTURE(testing::name(mode));
    fd_leak_check leaks;
    bench::echo_server srv(1);
    const endpoint ep = at(srv);
    constexpr unsigned hosts = 3;
    constexpr int tasks_per_host = 6;
    constexpr int requests_per_task = 50;
    shard_group group(hosts);
    {
      pool p(group, limit(2));
      std::latch up(hosts);
      std::latch down(hosts);
      std::atomic<unsigned> hosts_done{0};
      std::atomic<bool> closed{false};
      std::atomic<int> failed{0};
      std::set<int> leased[hosts];  // the connections each shard was lent (its own thread writes)
      std::vector<std::thread> threads;
      for (unsigned i = 0; i < hosts; ++i) {
        threads.emplace_back([&, i] {
          shard s(group, i, {.mode = mode});
          const int efd = ::epoll_create1(EPOLL_CLOEXEC);
          epoll_event ev{.events = EPOLLIN, .data = {.fd = s.notify_fd()}};
          ::epoll_ctl(efd, EPOLL_CTL_ADD, s.notify_fd(), &ev);
          up.arrive_and_wait();  // every shard is up before any uses the pool
          s.spawn([](pool& p, const endpoint& ep, std::set<int>& mine, std::atomic<int>& failed,
                     std::atomic<unsigned>& hosts_done) -> task<void> {
            co_await scoped([&](scope& sc) -> task<void> {
              for (int t = 0; t < tasks_per_host; ++t) {
                sc.spawn([](pool& p, const endpoint& ep, std::set<int>& mine,
                            std::atomic<int>& failed) -> task<void> {
                  for (int r = 0; r < requests_per_task; ++r) {
                    result<connection> c = co_await p.acquire(ep);
                    if (!c) {
                      failed.fetch_add(1);
                      continue;
                    }
                    mine.insert(c->flow().native_handle());
                    if (co_await echo(c->flow(), "through the host's loop")) {
                      p.release(std::move(*c));
                    } else {
                      failed.fetch_add(1);
                      p.close(std::move(*c));
                    }
                  }
                }(p, ep, mine, failed));
              }
              co_await sc.join();
            });
            hosts_done.fetch_add(1);
          }(p, ep, leased[i], failed, hosts_done));
          bool closing = false;
          while (!closed.load()) {
            epoll_event got[4];
            (void)::epoll_wait(efd, got, 4, 20);  // woken by completions; a tick to look around
            s.poll();
            if (i == 0 && !closing && hosts_done.load() == hosts) {
              closing = true;  // the others keep polling: the close reaches their parts
              s.spawn([](pool& p, std::atomic<bool>& closed) -> task<void> {
                co_await p.close_pool();
                closed.store(true);
              }(p, closed));
            }
          }
          ::close(efd);
          down.arrive_and_wait();  // no shard goes while another may still post to it
        });
      }
      for (std::thread& t : threads) t.join();
      CHECK(failed.load() == 0);
      CHECK(srv.peak() <= 2);
      const endpoint_stats st = p.stats(ep);
      CHECK(st.total_created <= 2);
      CHECK(st.total_created == st.total_closed);
      CHECK(st.active + st.idle == 0);
      // Every shard was lent connections, and there were at most two: they moved between the
      // shards. Each connection the pool opened was lent on more than one shard.
      std::map<int, int> shards_per_fd;
      for (const std::set<int>& mine : leased) {
        CHECK_FALSE(mine.empty());
        for (int fd : mine) ++shards_per_fd[fd];
      }
      CHECK(shards_per_fd.size() <= 2);
      for (const auto& [fd, n] : shards_per_fd) CHECK(n >= 2);
    }
  }
}

TEST_CASE("typed work for another shard: post and on_shard") {
  runtime rt({.shards = 3});
  std::atomic<unsigned> posted_ran_on{99};
  rt.run([&](unsigned shard) -> task<void> {
    if (shard != 0) co_return;  // the others serve what shard 0 sends them
    shard_group& group = rt.group();
    // A value computed on shard 2, given back here.
    const int v = co_await on_shard(group, 2, []() -> task<int> {
      co_return static_cast<int>(runtime::shard_index()) * 10;
    });
    CHECK(v == 20);
    CHECK(runtime::shard_index() == 0);  // back on its own shard
    // No value; a reference to this frame read and written over there.
    unsigned ran_on = 99;
    co_await on_shard(group, 1, [&]() -> task<void> {
      ran_on = runtime::shard_index();
      co_return;
    });
    CHECK(ran_on == 1);
    // An exception crosses back.
    bool caught = false;
    try {
      (void)co_await on_shard(group, 2, []() -> task<int> {
        throw std::runtime_error("failed on shard 2");
        co_return 0;
      });
    } catch (const std::runtime_error& e) {
      caught = std::string_view(e.what()) == "failed on shard 2";
    }
    CHECK(caught);
    // Fire and forget: the callable runs on shard 1 and tells shard 0 it did.
    post(group, 1, [&] {
      posted_ran_on.store(runtime::shard_index());
      shard::current()->spawn(tell(rt, 0, 7));
    });
    CHECK(co_await heard() == 7);
    CHECK(posted_ran_on.load() == 1);
    CHECK_THROWS_WITH_AS(post(group, 3, [] {}),
                         "conpool::post: shard 3 is out of the group's range (0 to 2)",
                         std::invalid_argument);
  });
  CHECK_THROWS_WITH_AS(post(rt.group(), 0, [] {}),
                       "conpool::post: called off the group's shards (call it on one of them)",
                       std::logic_error);
}

TEST_CASE("runtime and pool refuse bad use with a clear error") {
  CHECK_THROWS_WITH_AS(runtime({.shards = 65}), "conpool::runtime: shards 65 is more than 64",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(shard_group(0), "conpool::shard_group: size 0 is out of range (1 to 64)",
                       std::invalid_argument);
  {
    shard_group group(2);
    CHECK(group.ring_fd(0) == -1);
    CHECK_THROWS_WITH_AS(shard(group, 2), "conpool::shard: index 2 is out of the group's range (0 to 1)",
                         std::invalid_argument);
    shard first(group, 0);
    CHECK(group.ring_fd(0) == first.ring_fd());
    std::thread([&group] {
      CHECK_THROWS_WITH_AS(shard(group, 0), "conpool::shard: shard 0 of the group is up already",
                           std::logic_error);
    }).join();
  }
  runtime rt({.shards = 2});
  pool p(rt);
  CHECK(p.stats({"127.0.0.1", 1}) == endpoint_stats{});  // from a thread that is no shard
  shard lone;
  CHECK_THROWS_WITH_AS(lone.run(p.close_pool()),
                       "conpool::pool: used on a shard that is not one of the pool's (another "
                       "runtime, or a shard of its own)",
                       std::logic_error);
}

}  // namespace conpool::testing
