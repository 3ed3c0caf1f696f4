// SPDX-License-Identifier: MIT
#include "proxy_stats.hpp"

#include <ostream>

#include <conpool/metrics.hpp>

namespace conpool::proxy {

namespace {
std::uint64_t load(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }
}  // namespace

std::uint64_t proxy_stats::answered(int status) const noexcept {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < shards_; ++i) n += load(parts_[i].by_status[status]);
  return n;
}

void proxy_stats::write(std::ostream& os) const {
  std::uint64_t open = 0;
  std::uint64_t total = 0;
  std::uint64_t retries = 0;
  for (unsigned i = 0; i < shards_; ++i) {
    open += load(parts_[i].clients_open);
    total += load(parts_[i].clients_total);
    retries += load(parts_[i].retries);
  }
  os << "# HELP conpool_proxy_requests_total Requests answered, by status (the proxy's own "
        "errors included).\n# TYPE conpool_proxy_requests_total counter\n";
  for (int s = 100; s < 600; ++s) {
    if (const std::uint64_t n = answered(s); n != 0) {
      os << "conpool_proxy_requests_total{code=\"" << s << "\"} " << n << '\n';
    }
  }
  os << "# HELP conpool_proxy_client_connections Client connections open.\n"
        "# TYPE conpool_proxy_client_connections gauge\nconpool_proxy_client_connections "
     << open << "\n# HELP conpool_proxy_client_connections_total Client connections accepted.\n"
        "# TYPE conpool_proxy_client_connections_total counter\n"
        "conpool_proxy_client_connections_total "
     << total << "\n# HELP conpool_proxy_retries_total Idempotent requests sent again on a new "
        "upstream connection after a stale one.\n# TYPE conpool_proxy_retries_total counter\n"
        "conpool_proxy_retries_total "
     << retries << '\n';
  duration_histogram h;
  for (unsigned i = 0; i < shards_; ++i) {
    for (std::size_t b = 0; b < duration_histogram::bucket_count; ++b) {
      h.counts[b] += load(parts_[i].latency_counts[b]);
    }
    h.sum += std::chrono::duration<double>(parts_[i].latency_sum.load(std::memory_order_relaxed));
  }
  const char* name = "conpool_proxy_upstream_response_seconds";
  os << "# HELP " << name << " From the request's head sent upstream to the response's head.\n"
     << "# TYPE " << name << " histogram\n";
  write_prometheus_histogram(os, name, h);
}

}  // namespace conpool::proxy
