// SPDX-License-Identifier: MIT
#include "options.hpp"

#include "cli.hpp"

#include <conpool/address.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <stdexcept>
#include <string_view>

namespace conpool::bench {
namespace {

constexpr std::string_view usage = R"(usage: conpool-bench [options]

With no options: starts an io_uring echo server on its own thread and runs the six presets,
each through the pool and with a fresh connection per message, then prints a table.

  --preset NAME[,NAME]  high_reuse, many_endpoints, high_concurrency, large_messages,
                        constrained_pool, burst_traffic, or all (those six); extended;
                        many_upstreams (a forward proxy: 2,000 endpoints, Zipf popularity,
                        the pool's bytes per idle connection reported)
  --mode M              pooled, fresh or both (presets: both; --target: pooled)
  --min-time S          repeat a preset's workload until S seconds have passed (1)
  --target URL          a real server: tcp://host:port (echo), http://host:port/path
                        (HTTP/1.1 keep-alive GET), redis://host:port (GET or SET);
                        tls://host:port (echo) and https://host:port/path over TLS
  --ca-file FILE        CA certificates (PEM) for tls:// and https:// (default: the system's)
  --sni NAME            the server name sent and verified (default: the target's host)
  --insecure            INSECURE: do not verify the server's certificate
  --connections N       concurrent connections against --target (50)
  --duration S          seconds per --target run (5)
  --requests N          stop a --target run after N requests instead
  --size B              message bytes, or the Redis value's (64)
  --redis-op get|set    the Redis command (get)
  --shards N            run the target (or, without --target, the embedded echo server)
                        on 1, 2, ..., N shards, one thread each, sharing one pool: the
                        --connections are spread over the shards and are the pool's
                        limit across all of them (1 to 64)
  --compare PEER        also run wrk (http://) or redis-benchmark (redis://) against the
                        same server, same connections and duration, and print the ratio
  --json FILE           every figure, the machine and the command, as JSON
  --html FILE           a self-contained page with charts (latency, and the pool's
                        connect, acquire wait and lease hold histograms)
  --metrics ADDR        serve the running pool's Prometheus metrics at
                        http://ADDR/metrics while the runs go ("127.0.0.1:9464")
  --quiet               no progress bar
  --help                this text
)";

const std::vector<preset> all_presets = {
    {"high_reuse", 2, 20, 50, 10, 32, 3},
    {"many_endpoints", 10, 10, 10, 50, 64, 5},
    {"high_concurrency", 3, 100, 5, 100, 64, 20},
    {"large_messages", 3, 20, 20, 30, 1024, 10},
    {"constrained_pool", 2, 50, 10, 50, 64, 2},
    {"burst_traffic", 5, 200, 2, 100, 32, 15},
    {"extended", 30, 1000, 100, 500, 128, 50},
    {"many_upstreams", 2000, 10, 2, 50, 64, 4, true},
};
constexpr std::size_t default_presets = 6;  // "all": the first six

using tools::bad;
using tools::number;

void add_presets(options& o, std::string_view list) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (name == "all") {
      o.runs.insert(o.runs.end(), all_presets.begin(),
                    all_presets.begin() + static_cast<std::ptrdiff_t>(default_presets));
      continue;
    }
    bool found = false;
    for (const preset& p : all_presets) {
      if (p.name == name) {
        o.runs.push_back(p);
        found = true;
      }
    }
    if (!found) bad("--preset", name, "no such preset (see --help)");
  }
}

}  // namespace

const std::vector<preset>& presets() { return all_presets; }

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      std::cout << usage;
      return std::nullopt;
    }
    if (opt == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (opt == "--insecure") {
      o.insecure = true;
      continue;
    }
    static constexpr std::string_view with_value[] = {
        "--preset", "--mode",     "--min-time", "--target", "--connections", "--duration",
        "--requests", "--size", "--redis-op", "--compare", "--json",        "--html",
        "--ca-file",  "--sni",      "--shards",   "--metrics"};
    if (std::find(std::begin(with_value), std::end(with_value), opt) == std::end(with_value)) {
      throw std::invalid_argument("unknown option " + std::string(opt) + " (see --help)");
    }
    if (i + 1 >= argc) bad(opt, "", "needs a value (see --help)");
    const std::string_view v = argv[++i];
    if (opt == "--preset") {
      add_presets(o, v);
    } else if (opt == "--mode") {
      if (v == "pooled") o.run_mode = mode::pooled;
      else if (v == "fresh") o.run_mode = mode::fresh;
      else if (v == "both") o.run_mode = mode::both;
      else bad(opt, v, "expected pooled, fresh or both");
    } else if (opt == "--min-time") {
      o.min_time = number<double>(opt, v, 0.0, 3600.0);
    } else if (opt == "--target") {
      o.target = clients::url::parse(v);
      const std::string& scheme = o.target->scheme;
      if (scheme != "tcp" && scheme != "http" && scheme != "redis" && scheme != "tls" &&
          scheme != "https") {
        bad(opt, v, "scheme must be tcp://, http://, redis://, tls:// or https://");
      }
    } else if (opt == "--connections") {
      o.connections = number<int>(opt, v, 1, 100000);
    } else if (opt == "--duration") {
      o.duration = number<double>(opt, v, 0.01, 86400.0);
    } else if (opt == "--requests") {
      o.requests = number<std::uint64_t>(opt, v, 1, UINT64_MAX);
    } else if (opt == "--size") {
      o.size = number<int>(opt, v, 1, 64 << 20);
    } else if (opt == "--redis-op") {
      if (v != "get" && v != "set") bad(opt, v, "expected get or set");
      o.redis_op = std::string(v);
    } else if (opt == "--compare") {
      if (v != "wrk" && v != "redis-benchmark") bad(opt, v, "expected wrk or redis-benchmark");
      o.compare = std::string(v);
    } else if (opt == "--shards") {
      o.shards = number<unsigned>(opt, v, 1, 64);
    } else if (opt == "--ca-file") {
      o.ca_file = std::string(v);
    } else if (opt == "--sni") {
      o.sni = std::string(v);
    } else if (opt == "--json") {
      o.json = std::string(v);
    } else if (opt == "--html") {
      o.html = std::string(v);
    } else if (opt == "--metrics") {
      if (!socket_address::parse(v)) {
        bad(opt, v, "not an IP address with a port (\"127.0.0.1:9464\", \"[::1]:9464\")");
      }
      o.metrics = std::string(v);
    }
  }
  if (o.target && !o.runs.empty()) {
    throw std::invalid_argument("--preset and --target: one or the other");
  }
  if (o.shards > 0 && !o.runs.empty()) {
    bad("--shards", std::to_string(o.shards), "runs a --target or the echo server, not presets");
  }
  if (o.compare) {
    if (!o.target) bad("--compare", *o.compare, "needs a --target");
    const bool http = o.target->scheme == "http" || o.target->scheme == "https";
    if (*o.compare == "wrk" ? !http : o.target->scheme != "redis") {
      bad("--compare", *o.compare,
          *o.compare == "wrk" ? "compares against http:// or https:// targets only"
                              : "compares against redis:// targets only");
    }
  }
  if (!o.target && o.runs.empty() && o.shards == 0) add_presets(o, "all");
  return o;
}

}  // namespace conpool::bench
