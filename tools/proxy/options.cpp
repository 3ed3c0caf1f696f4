// SPDX-License-Identifier: MIT
#include "options.hpp"

#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <iostream>
#include <stdexcept>
#include <string_view>

namespace conpool::proxy {
namespace {

constexpr std::string_view usage = R"(usage: conpool-proxy --listen HOST:PORT --upstream URL [--upstream URL ...] [options]

An HTTP/1.1 reverse proxy on conpool: clients' requests go to the upstreams over pooled
keep-alive connections, one shard (thread, io_uring) per --shards, all sharing one pool.

  --listen HOST:PORT          where clients connect ("127.0.0.1:8080", "[::1]:8080")
  --upstream URL              http://host:port or https://host:port (verified), repeated
  --shards N                  shards (threads), each accepting on its own SO_REUSEPORT
                              listener (1; 1 to 64)
  --upstream-connections N    connections per upstream, across all shards (32)
  --balance POLICY            round-robin or least-loaded (round-robin)
  --metrics HOST:PORT         serve Prometheus metrics at http://HOST:PORT/metrics
  --connect-timeout S         opening an upstream connection (5)
  --response-timeout S        the upstream's response head, after the request (30): 504
  --client-timeout S          a client's next request head on a kept connection (60)
  --queue-timeout S           waiting for a connection at the upstream limit (5): 503
  --drain-timeout S           finishing requests in flight on SIGTERM / SIGINT (10)
  --max-header-bytes N        a request head (16384): 431 past it
  --max-body-bytes N          a request body (1073741824): 413 past it
  --ca-file FILE              CA certificates (PEM) for https:// upstreams (default: the system's)
  --insecure                  INSECURE: https:// upstreams not verified
  --quiet                     no start-up line
  --help                      this text
)";

using tools::bad;
using tools::number;

double seconds(std::string_view option, std::string_view text) {
  const double v = number<double>(option, text, 0, 86400);
  if (!(v > 0)) bad(option, text, "must be more than 0 seconds");
  return v;
}

}  // namespace

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  bool listen_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      std::cout << usage;
      return std::nullopt;
    }
    if (opt == "--insecure") {
      o.insecure = true;
      continue;
    }
    if (opt == "--quiet") {
      o.quiet = true;
      continue;
    }
    static constexpr std::string_view with_value[] = {
        "--listen",          "--upstream",         "--shards",        "--upstream-connections",
        "--balance",         "--metrics",          "--connect-timeout", "--response-timeout",
        "--client-timeout",  "--queue-timeout",    "--drain-timeout", "--max-header-bytes",
        "--max-body-bytes",  "--ca-file"};
    bool known = false;
    for (std::string_view w : with_value) known = known || w == opt;
    if (!known) bad(opt, "", "unknown option (see --help)");
    if (i + 1 >= argc) bad(opt, "", "needs a value");
    const std::string_view v = argv[++i];
    if (opt == "--listen") {
      result<socket_address> a = socket_address::parse(v);
      if (!a) bad(opt, v, "not an IP address with a port (\"127.0.0.1:8080\", \"[::1]:8080\")");
      o.listen = *a;
      listen_given = true;
    } else if (opt == "--upstream") {
      clients::url u = clients::url::parse(v);  // throws naming the text
      if (u.scheme != "http" && u.scheme != "https") bad(opt, v, "scheme must be http:// or https://");
      if (u.path != "/") bad(opt, v, "a path is not supported (requests keep theirs)");
      o.upstreams.push_back(std::move(u));
    } else if (opt == "--shards") {
      o.shards = number<unsigned>(opt, v, 1, 64);
    } else if (opt == "--upstream-connections") {
      o.upstream_connections = number<int>(opt, v, 1, 1'000'000);
    } else if (opt == "--balance") {
      if (v == "round-robin") {
        o.choice = balance::round_robin;
      } else if (v == "least-loaded") {
        o.choice = balance::least_loaded;
      } else {
        bad(opt, v, "expected round-robin or least-loaded");
      }
    } else if (opt == "--metrics") {
      if (!socket_address::parse(v)) {
        bad(opt, v, "not an IP address with a port (\"127.0.0.1:9464\", \"[::1]:9464\")");
      }
      o.metrics = std::string(v);
    } else if (opt == "--connect-timeout") {
      o.connect_timeout = seconds(opt, v);
    } else if (opt == "--response-timeout") {
      o.response_timeout = seconds(opt, v);
    } else if (opt == "--client-timeout") {
      o.client_timeout = seconds(opt, v);
    } else if (opt == "--queue-timeout") {
      o.queue_timeout = seconds(opt, v);
    } else if (opt == "--drain-timeout") {
      o.drain_timeout = seconds(opt, v);
    } else if (opt == "--max-header-bytes") {
      o.max_header_bytes = number<std::size_t>(opt, v, 256, 1 << 20);
    } else if (opt == "--max-body-bytes") {
      o.max_body_bytes = number<std::uint64_t>(opt, v, 0, UINT64_MAX);
    } else if (opt == "--ca-file") {
      o.ca_file = std::string(v);
    }
  }
  if (!listen_given) throw std::invalid_argument("--listen: required (see --help)");
  if (o.upstreams.empty()) throw std::invalid_argument("--upstream: at least one is required");
  return o;
}

}  // namespace conpool::proxy
