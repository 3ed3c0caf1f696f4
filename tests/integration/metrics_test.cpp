// SPDX-License-Identifier: MIT
// The Prometheus exposition against the real thing: a pool on 2 shards sends HTTP requests to
// nginx, HTTPS requests to nginx with a self-signed certificate (verified), and fails against
// a TLS name that does not verify and a port that refuses; `promtool check metrics` (Debian's
// prometheus package) passes its exposition, and a real Prometheus server, started here on
// loopback, scrapes it from conpool-bench's /metrics server and answers queries with the
// pool's own figures.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include <conpool/conpool.hpp>

#include "../support/support.hpp"
#include "http.hpp"
#include "http_get.hpp"
#include "metrics_server.hpp"
#include "peer_process.hpp"
#include "process.hpp"
#include "self_signed.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::find_program;
using testing::free_port;
using testing::http_get;

namespace {

// One GET / over a pooled connection; the response read whole.
task<result<int>> get(pool& p, const endpoint& ep) {
  co_return co_await p.with_connection(ep, [&ep](flow& f) -> task<result<int>> {
    const std::string req = clients::http_get_request(ep.host, "/");
    if (auto w = co_await f.write_all(req); !w) co_return fail(w.error());
    clients::read_buffer in;
    result<clients::http_response> r = co_await clients::read_http_response(f, in);
    if (!r) co_return fail(r.error());
    co_return r->status;
  });
}

// URL-encodes a PromQL query.
std::string encoded(std::string_view q) {
  std::string out;
  for (unsigned char c : q) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// The value of an instant query's first sample ("...\"value\":[1700000000.1,\"42\"]..."), or
// empty while Prometheus has none.
std::string query_value(std::uint16_t port, std::string_view promql) {
  const std::string body = http_get(port, "/api/v1/query?query=" + encoded(promql));
  const std::size_t v = body.find("\"value\":[");
  if (v == std::string::npos) return {};
  const std::size_t open = body.find(",\"", v);
  const std::size_t close = body.find('"', open + 2);
  if (open == std::string::npos || close == std::string::npos) return {};
  return body.substr(open + 2, close - open - 2);
}

struct traffic {
  endpoint plain;
  endpoint secure;
  endpoint misnamed;
  endpoint refused;
  int ok = 0;
  int failed = 0;
};

// 20 GETs over HTTP and 20 over HTTPS on each shard, and one failed open of each failing
// endpoint.
void run_traffic(pool& p, runtime& rt, traffic& t) {
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  rt.run([&](unsigned) -> task<void> {
    for (int i = 0; i < 20; ++i) {
      for (const endpoint* ep : {&t.plain, &t.secure}) {
        result<int> r = co_await get(p, *ep);
        if (r && *r == 200) ok.fetch_add(1);
      }
    }
    for (const endpoint* ep : {&t.misnamed, &t.refused}) {
      if (!(co_await get(p, *ep))) failed.fetch_add(1);
    }
  });
  t.ok = ok.load();
  t.failed = failed.load();
}

}  // namespace

TEST_CASE("metrics: promtool passes the exposition of plain, TLS and failing endpoints; Prometheus scrapes it and its queries give the pool's figures") {
  const std::string nginx = find_program("nginx");
  const std::string openssl = find_program("openssl");
  const std::string promtool = find_program("promtool");
  const std::string prometheus = find_program("prometheus");
  if (nginx.empty() || openssl.empty() || promtool.empty() || prometheus.empty()) {
    MESSAGE("nginx, openssl or prometheus (promtool) is not installed: skipped");
    return;
  }
  testing::nginx_server http(nginx, 1000);
  testing::https_nginx https(nginx, openssl);
  testing::refusing_port refusing;

  auto ctx = tls_context::make({.ca_file = https.tls.cert});
  traffic t;
  t.plain = http.where();
  t.secure = endpoint("127.0.0.1", https.server.port, tls_config{ctx, "localhost"});
  t.misnamed = endpoint("127.0.0.1", https.server.port, tls_config{ctx, "wrong.example"});
  t.refused = endpoint(refusing.address.host(), refusing.address.port());

  runtime rt({.shards = 2});
  config c;
  c.connect_backoff.reset();
  pool p(rt, c);
  run_traffic(p, rt, t);
  CHECK(t.ok == 80);
  CHECK(t.failed == 4);

  const endpoint_stats misnamed = p.stats(t.misnamed);
  CHECK(misnamed.errors_for(error_kind::tls_verify) == 2);
  CHECK(p.stats(t.refused).errors_for(error_kind::refused) == 2);
  const pool_histograms h = p.histograms();
  std::uint64_t created = 0;
  for (const auto& [ep, s] : p.all_stats()) created += s.total_created;
  CHECK(h.connect.count() == created);
  CHECK(h.acquire_wait.count() == 80);
  CHECK(h.lease_hold.count() == 80);

  // promtool: the format and Prometheus's naming rules.
  testing::temp_dir dir;
  const std::string text = prometheus_text(p);
  std::ofstream(dir.path / "metrics.txt") << text;
  // README's sample comes from here.
  if (const char* keep = std::getenv("CONPOOL_METRICS_SAMPLE")) std::ofstream(keep) << text;
  const bench::program_result checked = bench::run_program(
      {"/bin/sh", "-c", "\"$0\" check metrics < \"$1\"", promtool, (dir.path / "metrics.txt").string()});
  CHECK_MESSAGE(checked.status == 0, checked.out, checked.err);
  CHECK(checked.out.empty());
  CHECK(text.find("transport=\"tls\",server_name=\"localhost\"") != std::string::npos);
  CHECK(text.find("server_name=\"wrong.example\"} ") != std::string::npos);
  CHECK(text.find("kind=\"tls_verify\"} 2") != std::string::npos);
  CHECK(text.find("kind=\"refused\"} 2") != std::string::npos);

  // A real Prometheus scrapes the /metrics page every 200 ms.
  tools::metrics_server page("127.0.0.1:0");
  page.publish(p);
  const std::uint16_t api = free_port();
  std::ofstream(dir.path / "prometheus.yml")
      << "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n"
      << "scrape_configs:\n  - job_name: conpool\n    static_configs:\n"
      << "      - targets: ['" << page.address().to_string() << "']\n";
  testing::peer_process server({prometheus, "--config.file=" + (dir.path / "prometheus.yml").string(),
                                "--storage.tsdb.path=" + (dir.path / "data").string(),
                                "--web.listen-address=127.0.0.1:" + std::to_string(api),
                                "--log.level=warn"},
                               api);
  // Its first scrape comes within an interval of its start (bounded wait for the event).
  std::string up;
  for (int i = 0; i < 300 && up != "1"; ++i) {
    up = query_value(api, "up{job=\"conpool\"}");
    if (up != "1") ::usleep(50'000);
  }
  REQUIRE_MESSAGE(up == "1", "Prometheus did not scrape /metrics within 15 s");
  CHECK(page.served() >= 1);
  const std::string port = std::to_string(https.server.port);
  CHECK(query_value(api, "conpool_connections_created_total{transport=\"tls\",server_name=\"localhost\"}") ==
        std::to_string(p.stats(t.secure).total_created));
  CHECK(query_value(api, "conpool_connections_reused_total{port=\"" + std::to_string(http.port) + "\"}") ==
        std::to_string(p.stats(t.plain).total_reused));
  CHECK(query_value(api, "conpool_errors_total{kind=\"tls_verify\",port=\"" + port + "\"}") == "2");
  CHECK(query_value(api, "sum(conpool_connections_closed_total{reason=\"pool_closed\"})") ==
        std::to_string(p.totals().closed_for(close_reason::pool_closed)));
  CHECK(query_value(api, "conpool_lease_hold_seconds_count") == "80");
  CHECK(query_value(api, "conpool_shards") == "2");
  CHECK(query_value(api, "conpool_endpoints") == "4");
  // A histogram as Prometheus users read it: the median connect time lies within the buckets.
  const std::string median =
      query_value(api, "histogram_quantile(0.5, conpool_connect_duration_seconds_bucket)");
  CAPTURE(median);
  REQUIRE(!median.empty());
  CHECK(std::stod(median) > 0);
  CHECK(std::stod(median) < 16.8);
  page.withdraw(p);
}

TEST_CASE("metrics_server: a client that never sends its request holds the page 2 s at most; stopping does not wait for it") {
  runtime rt({.shards = 1});
  pool p(rt);
  pool other(rt);
  auto page = std::make_unique<tools::metrics_server>("127.0.0.1:0");
  const socket_address at = page->address();
  page->publish(p);
  CHECK_THROWS_WITH_AS(page->publish(p), doctest::Contains("published already"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(page->publish(other, "b"), doctest::Contains("a name each"),
                       std::invalid_argument);
  // A silent client is taken first; the scrape behind it is answered once its 2 s are up.
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(silent, at.data(), at.size()) == 0);
  const auto before = std::chrono::steady_clock::now();
  const std::string answer = http_get(at.port(), "/metrics");
  CHECK(answer.starts_with("HTTP/1.1 200 OK"));
  CHECK(std::chrono::steady_clock::now() - before < 4s);
  CHECK(http_get(at.port(), "/").starts_with("HTTP/1.1 404"));
  // Another silent client, held by the server when it stops: it stops at once all the same.
  const int second = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(second, at.data(), at.size()) == 0);
  const std::uint64_t answered = page->served();
  ::usleep(100'000);  // the server takes it (nothing to await from outside)
  const auto stopping = std::chrono::steady_clock::now();
  page.reset();
  CHECK(std::chrono::steady_clock::now() - stopping < 1s);
  CHECK(answered == 2);
  ::close(silent);
  ::close(second);
}
