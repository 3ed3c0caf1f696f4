// SPDX-License-Identifier: MIT
#pragma once
// What one run measured: every request's start and latency, and what the figures are made of
// (percentiles, a log-scale histogram, latency over time).

#include <cstdint>
#include <string>
#include <vector>

namespace conpool::bench {

/// One request: when it started (µs since the run began) and how long it took (ns).
struct sample {
  std::uint32_t start_us;
  std::uint32_t latency_ns;
};

struct percentiles {
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};

/// A histogram bar: requests whose latency is in [low_us, high_us).
struct bucket {
  double low_us;
  double high_us;
  std::uint64_t count;
};

/// One slice of the run: its start, requests per second in it and their p50 / p99.
struct slice {
  double at_s;
  double per_s;
  double p50_us;
  double p99_us;
};

/// Percentiles of `samples` (sorts a copy of their latencies).
percentiles summarize(const std::vector<sample>& samples);
/// Latencies on a log scale, 4 buckets an octave, from the smallest to the largest seen.
std::vector<bucket> histogram(const std::vector<sample>& samples);
/// The run cut in `count` equal slices of time by start (the last one may be partly empty).
std::vector<slice> timeline(const std::vector<sample>& samples, double seconds, int count = 60);

}  // namespace conpool::bench
