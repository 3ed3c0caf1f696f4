// SPDX-License-Identifier: MIT
#pragma once
/// A pool's metrics in the Prometheus text exposition format (version 0.0.4), for a `/metrics`
/// page: `write_prometheus(os, p)` or `prometheus_text(p)`, from any thread.
///
/// Per endpoint (labels `host`, `port`, `transport` = tcp / tls / unix, and `server_name` and
/// `proxy` where set; endpoints differing only in their TLS context object share one series,
/// summed, and should one of them be reclaimed the sum drops: Prometheus takes it for a reset):
///   conpool_connections{state="active|idle|opening"}   gauge
///   conpool_waiters                                   gauge: tasks waiting at the limit
///   conpool_connections_created_total                 counter
///   conpool_connections_reused_total                  counter: leases of a reused connection
///   conpool_connections_closed_total{reason="..."}    counter, by `close_reason`
///   conpool_errors_total{kind="..."}                  counter, by `error_kind`
///   conpool_acquire_timeouts_total                    counter
///   conpool_handoffs_total                            counter: connections sent to another shard
///   conpool_retries_total                             counter: stale retries
///   conpool_lease_leaks_total                         counter: leases past leak_threshold
/// A reason's or a kind's series appears with its first close or error. Per pool:
///   conpool_shards, conpool_endpoints                 gauges
///   conpool_connect_duration_seconds                  histogram (see histogram.hpp)
///   conpool_acquire_wait_seconds                      histogram
///   conpool_lease_hold_seconds                        histogram
/// Several pools in one page: name each (`metrics_source`); their series get `pool="name"`.
///
/// Cost: no lock and no pause of the shards. One walk over the pool's endpoints (as
/// `all_stats`: each shard's counters read with relaxed loads), a string per endpoint, and
/// about 1 KiB of text per endpoint. Counters read while shards work are each as of their own
/// moment (as `stats`).
///
/// Example:
///   // GET /metrics
///   std::string body = prometheus_text(p);
///   respond(200, prometheus_content_type, body);

#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

namespace conpool {

class pool;
struct duration_histogram;

/// The Content-Type of the exposition.
inline constexpr std::string_view prometheus_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

/// A pool in an exposition of several, and the value of its `pool` label.
struct metrics_source {
  const pool* source = nullptr;
  std::string name;
};

/// Writes `p`'s metrics (no `pool` label). Any thread.
void write_prometheus(std::ostream& os, const pool& p);
/// Writes the metrics of several pools, each series labelled with its pool's name. Throws
/// std::invalid_argument, before writing anything, for a null pool, an empty name, or a name
/// given twice.
void write_prometheus(std::ostream& os, std::span<const metrics_source> pools);
/// `write_prometheus(os, p)` into a string.
[[nodiscard]] std::string prometheus_text(const pool& p);

/// The series of one histogram, as the pool's are written (`name_bucket` for each bound and
/// +Inf, cumulative; `name_sum` in seconds; `name_count`), each with `labels` when given
/// (`pool="a"`, already escaped). For a program adding durations of its own to the page; the
/// family's HELP and TYPE lines are the caller's.
void write_prometheus_histogram(std::ostream& os, std::string_view name,
                                const duration_histogram& h, std::string_view labels = {});

}  // namespace conpool
