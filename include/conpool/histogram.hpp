// SPDX-License-Identifier: MIT
#pragma once
/// `duration_histogram`: how long something took, in log-spaced buckets from 1 µs to 16.8 s;
/// `pool_histograms`: a pool's three of them (connect, acquire wait, lease hold).
///
/// Each shard records into its own buckets with plain stores (no atomic read-modify-write, no
/// allocation); `pool::histograms()` sums the shards' buckets, from any thread.
///
/// Example:
///   pool_histograms h = p.histograms();
///   std::cout << h.connect.count() << " connects, p99 under "
///             << h.connect.quantile_bound(0.99).count() << " ns\n";

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace conpool {

struct duration_histogram {
  /// Finite buckets: bucket i counts durations in (bound(i-1), bound(i)], bound(i) = 1 µs × 2^i
  /// (1 µs, 2 µs, 4 µs, ... 8.39 s, 16.8 s); bucket 0 counts those up to 1 µs.
  static constexpr std::size_t finite_buckets = 25;
  /// The finite buckets and one for durations over the last bound.
  static constexpr std::size_t bucket_count = finite_buckets + 1;

  /// Durations per bucket (not cumulative).
  std::array<std::uint64_t, bucket_count> counts{};
  /// All recorded durations added up, in seconds (a float, as Prometheus's `_sum`: it does not
  /// overflow however long the pool runs).
  std::chrono::duration<double> sum{};

  /// The upper bound of finite bucket `i` (< finite_buckets): 1 µs × 2^i.
  [[nodiscard]] static constexpr std::chrono::nanoseconds bound(std::size_t i) noexcept {
    return std::chrono::nanoseconds(std::int64_t{1000} << i);
  }
  /// The bucket a duration of `ns` nanoseconds falls in (negative ones in bucket 0).
  [[nodiscard]] static constexpr std::size_t bucket_of(std::int64_t ns) noexcept {
    if (ns <= 1000) return 0;
    // ceil(ns / 1 µs) in (2^(i-1), 2^i] gives bucket i.
    const std::uint64_t us = (static_cast<std::uint64_t>(ns) + 999) / 1000;
    const auto i = static_cast<std::size_t>(64 - __builtin_clzll(us - 1));
    return i < finite_buckets ? i : finite_buckets;
  }
  /// Durations recorded.
  [[nodiscard]] std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) n += c;
    return n;
  }
  /// The upper bound of the bucket holding quantile `q` (0 < q <= 1): the q-th duration is at
  /// most this. Zero when empty; nanoseconds::max() when it lies past the last bound.
  [[nodiscard]] std::chrono::nanoseconds quantile_bound(double q) const noexcept;

  duration_histogram& operator+=(const duration_histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts[i] += o.counts[i];
    sum += o.sum;
    return *this;
  }
  friend bool operator==(const duration_histogram&, const duration_histogram&) = default;
};

/// A pool's distributions, each summed over its shards and over every endpoint.
struct pool_histograms {
  /// Opens that succeeded, from the open's start to a usable connection: resolve, connect (the
  /// Happy Eyeballs race), proxy tunnel and TLS handshake.
  duration_histogram connect;
  /// Acquisitions that got a lease, from the call to the lease: 0 for a hit on an idle
  /// connection, the open for a new one, and the time at the limit for one that waited.
  duration_histogram acquire_wait;
  /// Leases that ended (given back or closed), from the lease to its end. A stale retry's
  /// second connection is a lease of its own: leases = acquisitions + retries.
  duration_histogram lease_hold;
};

}  // namespace conpool
