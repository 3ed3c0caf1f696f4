// SPDX-License-Identifier: MIT
// Metrics: the gauges (opening, waiting), the counters by kind (errors, acquire timeouts), the
// pool's duration histograms (connect, acquire wait, lease hold: their counts equal the opens,
// acquisitions and leases, their sums what was waited and held), and the Prometheus exposition
// of all of it. The exposition's format is checked by promtool and scraped by a real
// Prometheus in tests/integration/metrics_test.cpp.
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_server.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::echo_once;
using testing::for_each_ring_mode;
using testing::full_backlog;
using testing::refusing_port;
using testing::test_server;
using testing::turns_until;
using testing::with_pool;

namespace {

// The exposition's samples: "name{labels}" -> value (comments left out).
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

std::string labels_of(const endpoint& ep) {
  return "host=\"" + ep.host + "\",port=\"" + std::to_string(ep.port) + "\",transport=\"tcp\"";
}

}  // namespace

TEST_CASE("metrics: histogram buckets are 1 us x 2^i; bucket_of puts a duration in the first bucket that holds it") {
  using h = duration_histogram;
  CHECK(h::bound(0) == 1us);
  CHECK(h::bound(10) == 1024us);
  CHECK(h::bound(h::finite_buckets - 1) == std::chrono::nanoseconds(16'777'216'000));
  CHECK(h::bucket_of(-5) == 0);
  CHECK(h::bucket_of(0) == 0);
  CHECK(h::bucket_of(1000) == 0);
  CHECK(h::bucket_of(1001) == 1);
  CHECK(h::bucket_of(2000) == 1);
  CHECK(h::bucket_of(2001) == 2);
  for (std::size_t i = 1; i < h::finite_buckets; ++i) {
    CAPTURE(i);
    CHECK(h::bucket_of(h::bound(i).count()) == i);
    CHECK(h::bucket_of(h::bound(i - 1).count() + 1) == i);
  }
  CHECK(h::bucket_of(h::bound(h::finite_buckets - 1).count() + 1) == h::finite_buckets);
  CHECK(h::bucket_of(INT64_MAX) == h::finite_buckets);

  h x;
  CHECK(x.quantile_bound(0.5) == 0ns);
  x.counts[3] = 98;  // (4 us, 8 us]
  x.counts[10] = 1;  // (512 us, 1024 us]
  x.counts[h::finite_buckets] = 1;
  CHECK(x.count() == 100);
  CHECK(x.quantile_bound(0.5) == 8us);
  CHECK(x.quantile_bound(0.99) == 1024us);
  CHECK(x.quantile_bound(1.0) == std::chrono::nanoseconds::max());
}

TEST_CASE("metrics: opening and waiting gauges, errors by kind, acquire timeouts") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    c.acquire_timeout = 100ms;
    c.connect_timeout = 200ms;
    c.connect_backoff.reset();  // each failing open is its own
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      // Refused: nothing listens.
      refusing_port refusing;
      const endpoint nobody{refusing.address.host(), refusing.address.port()};
      CHECK(!(co_await p.acquire(nobody)));
      CHECK(p.stats(nobody).errors_for(error_kind::refused) == 1);
      CHECK(p.stats(nobody).errors == 1);
      CHECK(p.stats(nobody).opening == 0);

      // Opening while the connect hangs (the listener's backlog is full), then a timeout.
      full_backlog stuck;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, endpoint at) -> task<void> {
          CHECK((co_await p.acquire(at)).error() == errc::connect_timeout);
        }(p, stuck.where()));
        CHECK(co_await turns_until([&] { return p.stats(stuck.where()).opening == 1; }));
        co_await sc.join();
      });
      const endpoint_stats hung = p.stats(stuck.where());
      CHECK(hung.opening == 0);
      CHECK(hung.errors_for(error_kind::timeout) == 1);
      CHECK(hung.errors == 1);

      // Waiting at the limit (1): one task waits, then gets the connection given back.
      result<connection> first = co_await p.acquire(ep);
      REQUIRE(first);
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, const endpoint& at) -> task<void> {
          result<connection> second = co_await p.acquire(at);
          REQUIRE(second);
          p.release(std::move(*second));
        }(p, ep));
        CHECK(co_await turns_until([&] { return p.stats(ep).waiting == 1; }));
        p.release(std::move(*first));
        co_await sc.join();
      });
      CHECK(p.stats(ep).waiting == 0);

      // An acquisition that gives up at the limit.
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held);
      CHECK((co_await p.acquire(ep)).error() == errc::acquire_timeout);
      CHECK(p.stats(ep).acquire_timeouts == 1);
      CHECK(p.stats(ep).waiting == 0);
      p.release(std::move(*held));

      // A lease whose user fails: kind in_use.
      result<int> r = co_await p.with_connection(
          ep, [](flow&) -> task<result<int>> { co_return fail(errc::unhealthy); });
      CHECK(r.error() == errc::unhealthy);
      const endpoint_stats s = p.stats(ep);
      CHECK(s.errors_for(error_kind::in_use) == 1);
      CHECK(s.errors == 1);
      std::ostringstream printed;
      printed << s;
      CHECK(printed.str().find("acquire_timeouts=1") != std::string::npos);
      CHECK(printed.str().find("error.in_use=1") != std::string::npos);
    });
  });
}

TEST_CASE("metrics: the histograms count every open, acquisition and lease; their sums are what was waited and held") {
  for_each_ring_mode([](ring_mode m) {
    config c;
    c.max_connections_per_endpoint = 1;
    with_pool(m, c, [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      const pool_histograms before = p.histograms();
      CHECK(before.connect.count() == 0);
      CHECK(before.acquire_wait.count() == 0);
      CHECK(before.lease_hold.count() == 0);

      // 1 new connection, then 9 hits; each lease held ~2 ms.
      for (int i = 0; i < 10; ++i) {
        result<connection> lease = co_await p.acquire(ep);
        REQUIRE(lease);
        (void)co_await sleep_for(2ms);
        p.release(std::move(*lease));
      }
      pool_histograms h = p.histograms();
      CHECK(h.connect.count() == p.stats(ep).total_created);
      CHECK(h.connect.count() == 1);
      CHECK(h.acquire_wait.count() == 10);
      CHECK(h.acquire_wait.counts[0] >= 9);  // the hits waited 0
      CHECK(h.lease_hold.count() == 10);
      CHECK(h.lease_hold.sum >= 20ms);
      CHECK(h.lease_hold.sum < 2s);
      CHECK(h.lease_hold.quantile_bound(0.5) >= 2ms);
      CHECK(h.connect.sum > 0ns);
      CHECK(h.connect.sum < 1s);

      // One waiter at the limit for ~30 ms: its wait is recorded.
      result<connection> first = co_await p.acquire(ep);
      REQUIRE(first);
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](pool& p, const endpoint& at) -> task<void> {
          result<connection> second = co_await p.acquire(at);
          REQUIRE(second);
          p.close(std::move(*second));  // ends a lease too
        }(p, ep));
        CHECK(co_await turns_until([&] { return p.stats(ep).waiting == 1; }));
        (void)co_await sleep_for(30ms);
        p.release(std::move(*first));
        co_await sc.join();
      });
      // A lease dropped, and one closed after its user's error: leases too.
      { REQUIRE(co_await p.acquire(ep)); }
      (void)co_await p.with_connection(ep, [](flow&) -> task<result<int>> {
        co_return fail(errc::unhealthy);
      });
      h = p.histograms();
      CHECK(h.acquire_wait.count() == 14);
      CHECK(h.acquire_wait.sum >= 30ms);
      CHECK(h.lease_hold.count() == 14);
      CHECK(h.connect.count() == p.stats(ep).total_created);
    });
  });
}

TEST_CASE("metrics: the exposition has HELP and TYPE for every family and the pool's values") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      const endpoint ep = server.where();
      refusing_port refusing;
      const endpoint nobody{refusing.address.host(), refusing.address.port()};
      for (int i = 0; i < 3; ++i) {
        const std::string msg = "hello";
        CHECK(co_await p.with_connection(ep, [&msg](flow& f) { return echo_once(f, msg); }) ==
              msg);
      }
      result<connection> held = co_await p.acquire(ep);
      REQUIRE(held);
      (void)co_await p.acquire(nobody);

      const std::string text = prometheus_text(p);
      const std::map<std::string, std::string> v = samples(text);
      const std::string at = labels_of(ep);
      CHECK(v.at("conpool_connections{" + at + ",state=\"active\"}") == "1");
      CHECK(v.at("conpool_connections{" + at + ",state=\"idle\"}") == "0");
      CHECK(v.at("conpool_connections{" + at + ",state=\"opening\"}") == "0");
      CHECK(v.at("conpool_connections_created_total{" + at + "}") == "1");
      CHECK(v.at("conpool_connections_reused_total{" + at + "}") == "3");
      CHECK(v.at("conpool_waiters{" + at + "}") == "0");
      CHECK(v.at("conpool_errors_total{" + labels_of(nobody) + ",kind=\"refused\"}") == "1");
      CHECK(v.count("conpool_errors_total{" + at + ",kind=\"refused\"}") == 0);  // zeros left out
      CHECK(v.at("conpool_shards") == "1");
      CHECK(v.at("conpool_endpoints") == "2");
      // Histograms: cumulative buckets, +Inf equal to the count, the count the pool's.
      const pool_histograms h = p.histograms();
      CHECK(v.at("conpool_acquire_wait_seconds_count") == std::to_string(h.acquire_wait.count()));
      CHECK(v.at("conpool_acquire_wait_seconds_bucket{le=\"+Inf\"}") ==
            std::to_string(h.acquire_wait.count()));
      CHECK(v.at("conpool_lease_hold_seconds_count") == "3");
      CHECK(v.at("conpool_connect_duration_seconds_count") == "1");
      CHECK(v.count("conpool_connect_duration_seconds_bucket{le=\"1e-06\"}") == 1);
      CHECK(v.count("conpool_connect_duration_seconds_bucket{le=\"16.777216\"}") == 1);
      std::uint64_t last = 0;
      std::size_t buckets = 0;
      for (const auto& [key, value] : v) {
        if (key.rfind("conpool_connect_duration_seconds_bucket", 0) != 0) continue;
        ++buckets;
        last = std::max<std::uint64_t>(last, std::stoull(value));
      }
      CHECK(buckets == duration_histogram::bucket_count);
      CHECK(last == 1);
      // Every family announced once, before its samples.
      for (const char* family :
           {"conpool_connections", "conpool_waiters", "conpool_connections_created_total",
            "conpool_connections_reused_total", "conpool_connections_closed_total",
            "conpool_errors_total", "conpool_acquire_timeouts_total", "conpool_handoffs_total",
            "conpool_retries_total", "conpool_lease_leaks_total", "conpool_shards",
            "conpool_endpoints", "conpool_connect_duration_seconds",
            "conpool_acquire_wait_seconds", "conpool_lease_hold_seconds"}) {
        CAPTURE(family);
        const std::string type = std::string("\n# TYPE ") + family + " ";
        CHECK(text.find(type) != std::string::npos);
        CHECK(text.find(type) == text.rfind(type));
        CHECK(text.find(std::string("# HELP ") + family + " ") != std::string::npos);
      }
      p.release(std::move(*held));
    });
  });
}

TEST_CASE("metrics: several pools in one page carry a pool label; bad sources are refused before any output") {
  for_each_ring_mode([](ring_mode m) {
    with_pool(m, default_config(), [](pool& p, test_server& server) -> task<void> {
      pool other;
      const endpoint ep = server.where();
      result<connection> a = co_await p.acquire(ep);
      REQUIRE(a);
      p.release(std::move(*a));

      const std::vector<metrics_source> both = {{&p, "upstreams"}, {&other, "cache"}};
      std::ostringstream os;
      write_prometheus(os, both);
      const std::map<std::string, std::string> v = samples(os.str());
      CHECK(v.at("conpool_connections_created_total{pool=\"upstreams\"," + labels_of(ep) + "}") ==
            "1");
      CHECK(v.at("conpool_shards{pool=\"cache\"}") == "1");
      CHECK(v.at("conpool_endpoints{pool=\"cache\"}") == "0");
      CHECK(v.at("conpool_lease_hold_seconds_count{pool=\"upstreams\"}") == "1");
      CHECK(v.at("conpool_lease_hold_seconds_bucket{pool=\"cache\",le=\"+Inf\"}") == "0");

      std::ostringstream none;
      const std::vector<metrics_source> twice = {{&p, "a"}, {&other, "a"}};
      CHECK_THROWS_WITH_AS(write_prometheus(none, twice), doctest::Contains("\"a\" is given twice"),
                           std::invalid_argument);
      const std::vector<metrics_source> unnamed = {{&p, ""}};
      CHECK_THROWS_WITH_AS(write_prometheus(none, unnamed), doctest::Contains("without a name"),
                           std::invalid_argument);
      const std::vector<metrics_source> null = {{nullptr, "x"}};
      CHECK_THROWS_WITH_AS(write_prometheus(none, null), doctest::Contains("\"x\" is null"),
                           std::invalid_argument);
      CHECK(none.str().empty());
      co_await other.close_pool();
    });
  });
}
