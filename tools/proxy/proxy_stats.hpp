// SPDX-License-Identifier: MIT
#pragma once
// conpool-proxy's own metrics, per shard (each written by its shard with relaxed loads and
// stores, summed by whoever reads them): requests by status, client connections, and the
// upstream response time (request sent to response head, log buckets as the pool's).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>

#include <conpool/histogram.hpp>

namespace conpool::proxy {

class proxy_stats {
 public:
  struct alignas(64) shard_part {
    std::atomic<std::uint64_t> clients_open{0};
    std::atomic<std::uint64_t> clients_total{0};
    std::atomic<std::uint64_t> retries{0};  // idempotent requests sent again on a new connection
    std::atomic<std::uint64_t> by_status[600]{};
    std::atomic<std::uint64_t> latency_counts[duration_histogram::bucket_count]{};
    std::atomic<double> latency_sum{0};

    void add(std::atomic<std::uint64_t>& c, std::int64_t n = 1) noexcept {
      c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n),
              std::memory_order_relaxed);
    }
    void answered(int status) noexcept {
      if (status >= 100 && status < 600) add(by_status[status]);
    }
    void upstream_took(std::chrono::nanoseconds d) noexcept {
      add(latency_counts[duration_histogram::bucket_of(d.count())]);
      latency_sum.store(latency_sum.load(std::memory_order_relaxed) +
                            std::chrono::duration<double>(d).count(),
                        std::memory_order_relaxed);
    }
  };

  explicit proxy_stats(unsigned shards)
      : shards_(shards), parts_(std::make_unique<shard_part[]>(shards)) {}

  shard_part& part(unsigned i) noexcept { return parts_[i]; }
  /// Requests answered with `status`, all shards.
  [[nodiscard]] std::uint64_t answered(int status) const noexcept;
  /// The proxy's metrics in the Prometheus text format (any thread).
  void write(std::ostream& os) const;

 private:
  unsigned shards_;
  std::unique_ptr<shard_part[]> parts_;
};

}  // namespace conpool::proxy
