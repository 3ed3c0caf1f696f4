// SPDX-License-Identifier: MIT
// conpool-bench as its users run it: a short smoke of the presets with both reports, a run
// against a real echo server, its errors, and (where installed) the comparisons with wrk and
// redis-benchmark. No figure is asserted: speed is measured, not tested.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/support.hpp"
#include "echo_server.hpp"
#include "http_get.hpp"
#include "peer_process.hpp"
#include "self_signed.hpp"
#include "process.hpp"

using namespace conpool;
using bench::run_program;

namespace {

std::string tool() {
  const char* path = std::getenv("CONPOOL_BENCH");
  REQUIRE_MESSAGE(path != nullptr, "CONPOOL_BENCH names the conpool-bench binary (meson test)");
  return path;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("conpool-bench: two presets, pooled and fresh, with the JSON and HTML reports") {
  testing::temp_dir dir;
  const std::string json = (dir.path / "report.json").string();
  const std::string html = (dir.path / "report.html").string();
  const bench::program_result r = run_program({tool(), "--preset", "high_reuse,constrained_pool",
                                                 "--min-time", "0", "--quiet", "--json", json,
                                                 "--html", html});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  // A row per preset and mode, no errors, the speedup printed on the pooled rows.
  for (const char* row : {"high_reuse", "constrained_pool"}) {
    CHECK(r.out.find(std::string(row)) != std::string::npos);
  }
  CHECK(r.out.find("pooled") != std::string::npos);
  CHECK(r.out.find("fresh") != std::string::npos);
  CHECK(r.out.find("x\n") != std::string::npos);
  CHECK(r.out.find("first error") == std::string::npos);

  const std::string j = slurp(json);
  for (const char* key : {"\"command\"", "\"machine\"", "\"kernel\"", "\"requests_per_s\"",
                          "\"pooled_over_fresh\"", "\"p99_9\"", "\"histogram\"", "\"timeline\""}) {
    CHECK_MESSAGE(j.find(key) != std::string::npos, key);
  }
  // high_reuse: 2 servers x 20 clients x 50 messages, every one checked.
  CHECK(j.find("\"requests\": 2000,") != std::string::npos);
  CHECK(j.find("\"errors\": 0,") != std::string::npos);
  CHECK(j.find("\"errors\": 1") == std::string::npos);

  const std::string h = slurp(html);
  CHECK(h.starts_with("<!doctype html>"));
  CHECK(h.find("<svg") != std::string::npos);
  CHECK(h.find("Latency over time") != std::string::npos);
  for (const char* chart : {"Pool: connect time", "Pool: acquire wait", "Pool: lease hold"}) {
    CHECK_MESSAGE(h.find(chart) != std::string::npos, chart);
  }
  // Self-contained: nothing to fetch.
  CHECK(h.find("src=") == std::string::npos);
  CHECK(h.find("href=") == std::string::npos);
}

TEST_CASE("conpool-bench: many_upstreams, 2,000 endpoints by popularity, the pool's memory") {
  testing::temp_dir dir;
  const std::string json = (dir.path / "report.json").string();
  const bench::program_result r = run_program({tool(), "--preset", "many_upstreams", "--mode",
                                                 "pooled", "--min-time", "0", "--quiet",
                                                 "--json", json});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("many_upstreams") != std::string::npos);
  CHECK(r.out.find("first error") == std::string::npos);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr bool heap_measured = false;  // mallinfo2 knows nothing of a sanitizer's allocator
#else
  constexpr bool heap_measured = true;
#endif
  CHECK(r.out.find("idle connections over") != std::string::npos);
  if (heap_measured) CHECK(r.out.find("B per idle connection") != std::string::npos);
  const std::string j = slurp(json);
  // By popularity, most endpoints are used in one round, the least popular not always.
  const std::size_t at = j.find("\"endpoints\": ");
  REQUIRE(at != std::string::npos);
  const long endpoints = std::stol(j.substr(at + 13));
  CHECK(endpoints > 1000);
  CHECK(endpoints <= 2000);
  // 2,000 endpoints x 10 clients x 2 messages, every one checked.
  CHECK(j.find("\"requests\": 40000,") != std::string::npos);
  CHECK(j.find("\"errors\": 0,") != std::string::npos);
  CHECK(j.find("\"idle_connections\"") != std::string::npos);
  if (heap_measured) CHECK(j.find("\"pool_bytes_per_idle\"") != std::string::npos);
}

TEST_CASE("conpool-bench: --target tcp:// against a real echo server, pooled and fresh") {
  bench::echo_server server(1);
  const std::string target = "tcp://127.0.0.1:" + std::to_string(server.ports()[0]);
  const bench::program_result r =
      run_program({tool(), "--target", target, "--connections", "4", "--requests", "400",
                   "--size", "1000", "--mode", "both", "--quiet"});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(target) != std::string::npos);
  CHECK(r.out.find("pooled") != std::string::npos);
  CHECK(r.out.find("fresh") != std::string::npos);
  CHECK(r.out.find("first error") == std::string::npos);
}

// Resident memory of the process whose command line contains `marker` (kB), 0 when none.
long rss_of(const std::string& marker) {
  for (const auto& d : std::filesystem::directory_iterator("/proc")) {
    std::ifstream cmd(d.path() / "cmdline");
    std::string line;
    std::getline(cmd, line, '\0');  // argv[0]; the rest follows, NUL-separated
    std::string rest((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (rest.find(marker) == std::string::npos) continue;
    std::ifstream status(d.path() / "status");
    for (std::string l; std::getline(status, l);) {
      if (l.starts_with("VmRSS:")) return std::stol(l.substr(6));
    }
  }
  return 0;
}

TEST_CASE("conpool-bench: its memory stays flat however long it runs") {
  // Every latency used to be kept (8 bytes a request): at ~100,000 requests a second the
  // process grew by ~0.8 MB a second. Now they go into fixed histograms.
  bench::echo_server server(1);
  const std::string target = "tcp://127.0.0.1:" + std::to_string(server.ports()[0]);
  testing::temp_dir dir;
  const std::string json = (dir.path / "flat-memory-run.json").string();  // finds the process
  bench::program_result r;
  std::thread run([&] {
    r = run_program({tool(), "--target", target, "--connections", "20", "--duration", "5",
                     "--quiet", "--json", json});
  });
  // Measured over time by nature: RSS once the run is under way, and again near its end.
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_until(started + std::chrono::milliseconds(1500));
  const long early = rss_of(json);
  std::this_thread::sleep_until(started + std::chrono::milliseconds(4500));
  const long late = rss_of(json);
  run.join();
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  const std::string j = slurp(json);
  const std::size_t at = j.find("\"requests\": ");
  REQUIRE(at != std::string::npos);
  const double requests = std::stod(j.substr(at + 12));
  MESSAGE("RSS " << early << " kB at 1.5 s, " << late << " kB at 4.5 s; " << requests
                 << " requests (kept one by one, 3 s of them would be "
                 << requests * 3 / 5 * 8 / 1024 << " kB)");
  REQUIRE(early > 0);
  REQUIRE(late > 0);
#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed memory in quarantine (up to 256 MB): RSS grows by design there.
  MESSAGE("under ASan RSS is not a measure of what the program keeps");
#else
  CHECK(late - early < 512);
#endif
}

TEST_CASE("conpool-bench: --shards runs 1 to N shards sharing one pool, within its limit") {
  bench::echo_server server(1);
  const std::string target = "tcp://127.0.0.1:" + std::to_string(server.ports()[0]);
  const bench::program_result r =
      run_program({tool(), "--target", target, "--shards", "2", "--connections", "6",
                   "--requests", "600", "--quiet"});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(target + " (1 shard)") != std::string::npos);
  CHECK(r.out.find(target + " (2 shards)") != std::string::npos);
  CHECK(server.accepted() <= 2 * 6);  // 6 a run: the limit holds across the shards
  // Without --target: the embedded echo server.
  const bench::program_result alone =
      run_program({tool(), "--shards", "2", "--connections", "4", "--requests", "200", "--quiet"});
  INFO(alone.out, alone.err);
  CHECK(alone.status == 0);
  CHECK(alone.out.find("(2 shards)") != std::string::npos);
}

TEST_CASE("conpool-bench: --metrics serves the running pool's metrics at /metrics, as promtool wants them") {
  bench::echo_server server(1);
  const std::string target = "tcp://127.0.0.1:" + std::to_string(server.ports()[0]);
  const std::uint16_t port = testing::free_port();
  bench::program_result r;
  std::thread run([&] {
    r = run_program({tool(), "--target", target, "--shards", "2", "--connections", "4",
                     "--duration", "2", "--quiet", "--metrics",
                     "127.0.0.1:" + std::to_string(port)});
  });
  // The page is up once the tool has started, and shows a pool once a run is under way.
  std::string page;
  for (int i = 0; i < 400 && page.find("conpool_connections_created_total{") == std::string::npos;
       ++i) {
    page = testing::http_get(port, "/metrics");
    if (page.find("conpool_connections_created_total{") == std::string::npos) ::usleep(10'000);
  }
  const std::string missing = testing::http_get(port, "/nothing");
  run.join();
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("metrics at http://127.0.0.1:" + std::to_string(port) + "/metrics") !=
        std::string::npos);
  REQUIRE(page.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(page.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(page.find("conpool_connections_created_total{host=\"127.0.0.1\",port=\"" +
                  std::to_string(server.ports()[0]) + "\",transport=\"tcp\"} ") !=
        std::string::npos);
  CHECK(page.find("conpool_lease_hold_seconds_bucket{le=\"+Inf\"} ") != std::string::npos);
  CHECK(missing.starts_with("HTTP/1.1 404"));
  const std::string promtool = testing::find_program("promtool");
  if (promtool.empty()) {
    MESSAGE("promtool (Debian's prometheus) is not installed: the format is not checked");
    return;
  }
  testing::temp_dir dir;
  std::ofstream(dir.path / "page.txt") << page.substr(page.find("\r\n\r\n") + 4);
  const bench::program_result checked = run_program(
      {"/bin/sh", "-c", "\"$0\" check metrics < \"$1\"", promtool, (dir.path / "page.txt").string()});
  CHECK_MESSAGE(checked.status == 0, checked.out, checked.err);
}

TEST_CASE("conpool-bench: a refused target fails the run with the system's reason") {
  testing::refusing_port closed;
  const bench::program_result r = run_program(
      {tool(), "--target", "tcp://127.0.0.1:" + std::to_string(closed.address.port()),
       "--requests", "3", "--connections", "1", "--quiet"});
  CHECK(r.status == 1);
  CHECK(r.out.find("first error: Connection refused") != std::string::npos);
}

TEST_CASE("conpool-bench: bad options are named, before any I/O") {
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {{"--connections", "0"}, "--connections 0: out of range"},
      {{"--preset", "nope"}, "--preset nope: no such preset"},
      {{"--target", "ftp://h:21"}, "scheme must be tcp://, http://, redis://, tls:// or https://"},
      {{"--target", "tcp://127.0.0.1"}, "no port"},
      {{"--compare", "wrk"}, "--compare wrk: needs a --target"},
      {{"--target", "redis://127.0.0.1:1", "--compare", "wrk"}, "http:// or https:// targets only"},
      {{"--size", "big"}, "--size big: not a number"},
      {{"--frobnicate"}, "unknown option --frobnicate"},
      {{"--shards", "65"}, "--shards 65: out of range"},
      {{"--shards", "2", "--preset", "burst_traffic"}, "--shards 2: runs a --target or the echo"},
      {{"--metrics", "nope"}, "--metrics nope: not an IP address with a port"},
      {{"--metrics", "localhost:9464"}, "--metrics localhost:9464: not an IP address"},
  };
  for (const bad_case& c : cases) {
    std::vector<std::string> argv = {tool()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const bench::program_result r = run_program(argv);
    INFO(c.message, " / ", r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
  const bench::program_result help = run_program({tool(), "--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("--compare PEER") != std::string::npos);
}

TEST_CASE("conpool-bench: --target http:// against nginx, and --compare wrk") {
  const std::string nginx = testing::find_program("nginx");
  if (nginx.empty()) {
    MESSAGE("nginx is not installed: skipped");
    return;
  }
  testing::nginx_server server(nginx, 1000);
  const std::string target = "http://127.0.0.1:" + std::to_string(server.port) + "/";
  const bench::program_result r = run_program({tool(), "--target", target, "--connections", "8",
                                                 "--duration", "1", "--compare", "wrk", "--quiet"});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("first error") == std::string::npos);
  if (testing::find_program("wrk").empty()) {
    CHECK(r.out.find("wrk is not installed") != std::string::npos);  // named, not fatal
  } else {
    CHECK(r.out.find("conpool / wrk: ") != std::string::npos);
  }
}

TEST_CASE("conpool-bench: --target redis:// GET and SET, and --compare redis-benchmark") {
  const std::string redis = testing::find_program("redis-server");
  if (redis.empty()) {
    MESSAGE("redis-server is not installed: skipped");
    return;
  }
  testing::redis_server server(redis);
  const std::string target = "redis://127.0.0.1:" + std::to_string(server.port);
  const bench::program_result set = run_program({tool(), "--target", target, "--redis-op", "set",
                                                   "--requests", "500", "--size", "100", "--quiet"});
  INFO(set.out, set.err);
  CHECK(set.status == 0);
  const bench::program_result get =
      run_program({tool(), "--target", target, "--requests", "2000", "--connections", "8",
                   "--compare", "redis-benchmark", "--quiet"});
  INFO(get.out, get.err);
  REQUIRE(get.status == 0);
  if (testing::find_program("redis-benchmark").empty()) {
    CHECK(get.out.find("redis-benchmark is not installed") != std::string::npos);
  } else {
    CHECK(get.out.find("conpool / redis-benchmark: ") != std::string::npos);
  }
}

TEST_CASE("conpool-bench: --target https:// against nginx with TLS: verified, pooled and fresh") {
  const std::unique_ptr<testing::https_nginx> https = testing::https_nginx::start();
  if (!https) return;
  const testing::nginx_server& server = https->server;
  const std::string& cert = https->tls.cert;
  const std::string target = "https://127.0.0.1:" + std::to_string(server.port) + "/";

  // Verified against the self-signed certificate, for the name it carries.
  const bench::program_result ok =
      run_program({tool(), "--target", target, "--ca-file", cert, "--sni", "localhost",
                   "--connections", "4", "--requests", "200", "--mode", "both", "--quiet"});
  INFO(ok.out, ok.err);
  CHECK(ok.status == 0);
  CHECK(ok.out.find("pooled") != std::string::npos);
  CHECK(ok.out.find("fresh") != std::string::npos);
  CHECK(ok.out.find("first error") == std::string::npos);

  // Secure by default: without the CA the certificate does not verify.
  const bench::program_result refused = run_program(
      {tool(), "--target", target, "--sni", "localhost", "--requests", "3", "--quiet"});
  CHECK(refused.status == 1);
  CHECK(refused.out.find("first error: TLS peer verification failed") != std::string::npos);
}
