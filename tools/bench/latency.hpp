// SPDX-License-Identifier: MIT
#pragma once
// What one run measured, in memory that does not grow with the run: every request's latency in
// a log-linear histogram (HdrHistogram's layout: exact below 2^b ns, then 2^b sub-buckets an
// octave, so a value is off by less than 2^-b), and latency over time in slices that each keep
// a coarser histogram, their width doubled (neighbours merged) whenever there are too many.
// Both merge: the shards of a run add theirs up. From them: percentiles, a log-scale histogram,
// latency over time.

#include <cstdint>
#include <vector>

namespace conpool::bench {

/// Counts of values (ns) in log-linear buckets: values below 2^sub_bits exact, larger ones in
/// 2^sub_bits buckets an octave (relative error under 2^-sub_bits), up to 2^40 ns (18 min;
/// larger ones are counted in the last bucket). Fixed size: (41 - sub_bits) << sub_bits counts.
class log_histogram {
 public:
  explicit log_histogram(unsigned sub_bits);

  void add(std::uint64_t ns) noexcept;
  /// Adds `o`'s counts (the same sub_bits).
  void merge(const log_histogram& o) noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  [[nodiscard]] double mean() const noexcept {
    return count_ ? sum_ / static_cast<double>(count_) : 0;
  }
  /// The smallest value with at least `q` of the values at or below it, to within the
  /// bucket's width (the bucket's middle; the exact max for q = 1).
  [[nodiscard]] double quantile(double q) const noexcept;
  /// Calls f(low_ns, high_ns, count) for every bucket with values, in order.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] != 0) f(low(i), low(i + 1), counts_[i]);
    }
  }
  /// Memory it holds (fixed).
  [[nodiscard]] std::size_t bytes() const noexcept { return counts_.size() * sizeof(counts_[0]); }

 private:
  [[nodiscard]] std::size_t index(std::uint64_t ns) const noexcept;
  [[nodiscard]] double low(std::size_t i) const noexcept;

  unsigned bits_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  double sum_ = 0;
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

/// A run's latencies: the whole run within 0.8% (7 sub-bucket bits) and slices of time within
/// 6.3% (4 bits), at most 120 slices (60 to 120 once the run passes 0.6 s: their width starts at
/// 10 ms and doubles). At most ~590 KiB however long the run.
class latency_record {
 public:
  latency_record();
  /// A request that started `at_s` seconds into the run and took `ns`.
  void add(double at_s, std::uint64_t ns);
  /// Adds `o` (another shard's part of the same run, timed from the same start).
  void merge(const latency_record& o);

  [[nodiscard]] std::uint64_t count() const noexcept { return all_.count(); }
  [[nodiscard]] const log_histogram& all() const noexcept { return all_; }
  /// The slices so far, `width_s` each.
  [[nodiscard]] const std::vector<log_histogram>& slices() const noexcept { return slices_; }
  [[nodiscard]] double width_s() const noexcept { return width_s_; }
  [[nodiscard]] std::size_t bytes() const noexcept;

  static constexpr std::size_t max_slices = 120;

 private:
  void widen();  // neighbours merged, the width doubled

  log_histogram all_;
  std::vector<log_histogram> slices_;
  double width_s_ = 0.01;
};

/// Percentiles of a run.
percentiles summarize(const latency_record& r);
/// Latencies on a log scale, 4 buckets an octave, from the smallest to the largest seen.
std::vector<bucket> histogram(const latency_record& r);
/// The run's slices of time, up to `seconds` (requests per second and p50 / p99 in each).
std::vector<slice> timeline(const latency_record& r, double seconds);

}  // namespace conpool::bench
