// SPDX-License-Identifier: MIT
#pragma once
// A pool's duration histograms on one shard (connect, acquire wait, lease hold): the shard
// alone writes them, with a relaxed load and store (no read-modify-write, no allocation), and
// any thread sums them (pool::histograms). One set per shard, made with the pool (not with
// the shard's part, which a reader could race with), each on lines of its own.

#include <atomic>
#include <cstdint>

#include <conpool/histogram.hpp>

#include "endpoint_table.hpp"
#include "slot.hpp"

namespace conpool::detail {

struct alignas(64) duration_cells {
  std::atomic<std::uint64_t> counts[duration_histogram::bucket_count]{};
  std::atomic<double> sum_s{0};  // seconds: nanoseconds in 64 bits would overflow within
                                // months of leases at 10,000 connections

  void record(loop_clock::duration d) noexcept {
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    bump(counts[duration_histogram::bucket_of(ns)]);
    if (ns > 0) {
      sum_s.store(sum_s.load(std::memory_order_relaxed) + static_cast<double>(ns) * 1e-9,
                  std::memory_order_relaxed);
    }
  }
  /// A duration of zero (a hit's wait): one store.
  void record_zero() noexcept { bump(counts[0]); }
  void add_to(duration_histogram& h) const noexcept {
    for (std::size_t i = 0; i < duration_histogram::bucket_count; ++i) h.counts[i] += read(counts[i]);
    h.sum += std::chrono::duration<double>(sum_s.load(std::memory_order_relaxed));
  }
};

static_assert(std::atomic<double>::is_always_lock_free);

struct shard_timings {
  duration_cells connect;
  duration_cells acquire_wait;
  duration_cells lease_hold;
};

}  // namespace conpool::detail
