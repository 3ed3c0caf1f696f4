// SPDX-License-Identifier: MIT
#pragma once
// The runs: a preset against the embedded echo server, or a real server (--target), through
// the pool or with a fresh connection per request. "Fresh" is the same pool with
// max_connection_uses = 1: the same code path, each connection opened for one request and
// closed after it, so the difference measured is reuse alone.

#include <cstdint>
#include <string>
#include <vector>

#include <conpool/histogram.hpp>
#include <conpool/task.hpp>

#include "echo_server.hpp"
#include "latency.hpp"
#include "metrics_server.hpp"
#include "options.hpp"
#include "progress.hpp"

namespace conpool::bench {

struct run_result {
  std::string name;    ///< the preset's, or the target's URL
  std::string mode;    ///< "pooled" or "fresh"
  std::string detail;  ///< the workload in words
  std::uint64_t requests = 0;  ///< completed and checked
  std::uint64_t errors = 0;
  std::uint64_t created = 0;  ///< connections opened
  std::uint64_t reused = 0;   ///< idle connections handed out again
  int rounds = 0;             ///< times a preset's workload ran
  int concurrency = 0;
  double seconds = 0;
  std::string first_error;  ///< what the first failed request said
  /// Pooled presets: connections left idle at the end, over how many endpoints, and the
  /// pool's heap bytes per idle connection then (slots, slabs, entries, table: what
  /// destroying the pool gave back), 0 when not measured.
  std::uint64_t idle = 0;
  std::uint64_t endpoints = 0;
  double bytes_per_idle = 0;
  latency_record latency;  ///< every completed request's latency (fixed memory)
  pool_histograms timings;  ///< the pool's connect, acquire wait and lease hold histograms

  [[nodiscard]] double per_s() const {
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0;
  }
};

/// The runs' pools are served by `s` while they run (none: not served).
void publish_metrics_to(tools::metrics_server* s) noexcept;

/// Runs `p` against `server` until `o.min_time` has passed (at least once).
task<run_result> run_preset(const preset& p, bool pooled, const echo_server& server,
                            const options& o, progress& bar);

/// Runs `o.connections` workers against `o.target` for `o.duration` or `o.requests`.
task<run_result> run_target(const options& o, bool pooled, progress& bar);

/// The same on a runtime of `shards` shards (pinned threads) sharing one pool whose limit is
/// `o.connections` across them; the workers are spread over the shards. Called off any shard.
run_result run_sharded(const options& o, unsigned shards, bool pooled, progress& bar);

}  // namespace conpool::bench
