// SPDX-License-Identifier: MIT
// The Prometheus text exposition (0.0.4) of pools: a snapshot of each pool (its endpoints'
// stats, merged by label set, and its histograms) taken first, then one family at a time,
// each with its HELP and TYPE lines once, over every pool.
#include <conpool/metrics.hpp>

#include <charconv>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <conpool/histogram.hpp>
#include <conpool/pool.hpp>

namespace conpool {

namespace {

// A label value with \, " and newline escaped (the format's rule).
void escape_into(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void add_label(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  escape_into(out, value);
  out += '"';
}

// A number as Prometheus reads it: the shortest text that reads back to the same double.
std::string number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

struct endpoint_series {
  std::string labels;  // host, port, transport... (with the pool's label first when named)
  endpoint_stats stats;
};

struct pool_snapshot {
  std::string pool_label;  // `pool="name"`, or empty
  std::vector<endpoint_series> endpoints;
  std::size_t shards = 0;
  std::size_t listed = 0;
  pool_histograms histograms;
};

pool_snapshot snapshot(const pool& p, std::string_view name) {
  pool_snapshot s;
  if (!name.empty()) add_label(s.pool_label, "pool", name);
  s.shards = p.shards();
  s.listed = p.endpoints();
  s.histograms = p.histograms();
  std::unordered_map<std::string, std::size_t> index;
  for (auto& [ep, st] : p.all_stats()) {
    std::string labels = s.pool_label;
    add_label(labels, "host", ep.host);
    add_label(labels, "port", std::to_string(ep.port));
    add_label(labels, "transport", ep.is_unix() ? "unix" : ep.tls ? "tls" : "tcp");
    if (ep.tls && ep.tls->servername) add_label(labels, "server_name", *ep.tls->servername);
    if (ep.proxy) add_label(labels, "proxy", ep.proxy->to_string());
    // Endpoints that differ only in their TLS context object look alike: one series, summed.
    auto [it, added] = index.try_emplace(labels, s.endpoints.size());
    if (added) {
      s.endpoints.push_back({std::move(labels), st});
    } else {
      s.endpoints[it->second].stats += st;
    }
  }
  return s;
}

class writer {
 public:
  writer(std::ostream& os, const std::vector<pool_snapshot>& pools) : os_(os), pools_(pools) {}

  void write() {
    endpoint_family("conpool_connections", "gauge",
                    "Connections by state: handed out (active), waiting in the pool (idle), "
                    "being opened (opening).",
                    [this](const endpoint_series& e) {
                      sample("conpool_connections", e.labels, "state", "active", e.stats.active);
                      sample("conpool_connections", e.labels, "state", "idle", e.stats.idle);
                      sample("conpool_connections", e.labels, "state", "opening", e.stats.opening);
                    });
    simple("conpool_waiters", "gauge", "Tasks waiting for a connection at the endpoint's limit.",
           &endpoint_stats::waiting);
    simple("conpool_connections_created_total", "counter", "Connections opened.",
           &endpoint_stats::total_created);
    simple("conpool_connections_reused_total", "counter",
           "Leases of a connection that had been lent before.", &endpoint_stats::total_reused);
    endpoint_family("conpool_connections_closed_total", "counter",
                    "Connections closed, by reason.", [this](const endpoint_series& e) {
                      for (std::size_t r = 0; r < close_reason_count; ++r) {
                        if (e.stats.closed_by[r] == 0) continue;
                        sample("conpool_connections_closed_total", e.labels, "reason",
                               to_string(static_cast<close_reason>(r)), e.stats.closed_by[r]);
                      }
                    });
    endpoint_family("conpool_errors_total", "counter",
                    "Failed opens by kind, and leases whose user failed (kind in_use).",
                    [this](const endpoint_series& e) {
                      for (std::size_t k = 0; k < error_kind_count; ++k) {
                        if (e.stats.errors_by[k] == 0) continue;
                        sample("conpool_errors_total", e.labels, "kind",
                               to_string(static_cast<error_kind>(k)), e.stats.errors_by[k]);
                      }
                    });
    simple("conpool_acquire_timeouts_total", "counter",
           "Acquisitions that gave up after acquire_timeout.", &endpoint_stats::acquire_timeouts);
    simple("conpool_handoffs_total", "counter",
           "Connections handed to a waiter on another shard.", &endpoint_stats::handoffs);
    simple("conpool_retries_total", "counter",
           "Callbacks run again on a new connection after a stale reused one.",
           &endpoint_stats::retries);
    simple("conpool_lease_leaks_total", "counter", "Leases held longer than leak_threshold.",
           &endpoint_stats::leaks);
    pool_gauge("conpool_shards", "Shards the pool spans.", &pool_snapshot::shards);
    pool_gauge("conpool_endpoints", "Endpoints the pool holds (used and not reclaimed).",
               &pool_snapshot::listed);
    histogram("conpool_connect_duration_seconds",
              "Successful opens: resolve, connect, tunnel and TLS handshake.",
              &pool_histograms::connect);
    histogram("conpool_acquire_wait_seconds",
              "From acquire to lease: 0 for an idle hit, the open for a new connection, the "
              "wait at the limit.",
              &pool_histograms::acquire_wait);
    histogram("conpool_lease_hold_seconds", "From the start of a lease to its end.",
              &pool_histograms::lease_hold);
  }

 private:
  void header(std::string_view name, std::string_view type, std::string_view help) {
    os_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <class F>
  void endpoint_family(std::string_view name, std::string_view type, std::string_view help,
                       F&& each) {
    header(name, type, help);
    for (const pool_snapshot& p : pools_) {
      for (const endpoint_series& e : p.endpoints) each(e);
    }
  }
  void simple(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t endpoint_stats::*field) {
    endpoint_family(name, type, help, [&](const endpoint_series& e) {
      os_ << name << '{' << e.labels << "} " << e.stats.*field << '\n';
    });
  }
  void sample(std::string_view name, const std::string& labels, std::string_view label,
              std::string_view value, std::uint64_t n) {
    os_ << name << '{' << labels << ',' << label << "=\"" << value << "\"} " << n << '\n';
  }
  void pool_gauge(std::string_view name, std::string_view help, std::size_t pool_snapshot::*field) {
    header(name, "gauge", help);
    for (const pool_snapshot& p : pools_) {
      os_ << name;
      if (!p.pool_label.empty()) os_ << '{' << p.pool_label << '}';
      os_ << ' ' << p.*field << '\n';
    }
  }
  void histogram(std::string_view name, std::string_view help,
                 duration_histogram pool_histograms::*which) {
    header(name, "histogram", help);
    for (const pool_snapshot& p : pools_) write_prometheus_histogram(os_, name, p.histograms.*which, p.pool_label);
  }

  std::ostream& os_;
  const std::vector<pool_snapshot>& pools_;
};

}  // namespace

void write_prometheus(std::ostream& os, std::span<const metrics_source> pools) {
  std::unordered_set<std::string_view> names;
  for (const metrics_source& m : pools) {
    if (m.source == nullptr) {
      throw std::invalid_argument("conpool::write_prometheus: the pool named \"" + m.name +
                                  "\" is null");
    }
    if (m.name.empty()) {
      throw std::invalid_argument(
          "conpool::write_prometheus: a pool without a name (its series need a pool label)");
    }
    if (!names.insert(m.name).second) {
      throw std::invalid_argument("conpool::write_prometheus: the pool name \"" + m.name +
                                  "\" is given twice");
    }
  }
  std::vector<pool_snapshot> snaps;
  snaps.reserve(pools.size());
  for (const metrics_source& m : pools) snaps.push_back(snapshot(*m.source, m.name));
  writer(os, snaps).write();
}

void write_prometheus(std::ostream& os, const pool& p) {
  std::vector<pool_snapshot> snaps;
  snaps.push_back(snapshot(p, {}));
  writer(os, snaps).write();
}

void write_prometheus_histogram(std::ostream& os, std::string_view name,
                                const duration_histogram& h, std::string_view labels) {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < duration_histogram::finite_buckets; ++i) {
    cumulative += h.counts[i];
    const double le = std::chrono::duration<double>(duration_histogram::bound(i)).count();
    os << name << "_bucket{" << labels << sep << "le=\"" << number(le) << "\"} " << cumulative
       << '\n';
  }
  cumulative += h.counts[duration_histogram::finite_buckets];
  os << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << cumulative << '\n';
  const std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  os << name << "_sum" << braces << ' ' << number(h.sum.count()) << '\n';
  os << name << "_count" << braces << ' ' << cumulative << '\n';
}

std::string prometheus_text(const pool& p) {
  std::ostringstream os;
  write_prometheus(os, p);
  return std::move(os).str();
}

}  // namespace conpool
