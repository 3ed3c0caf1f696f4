// SPDX-License-Identifier: MIT
// duration_histogram's quantile, and a pool's histograms summed over its shards.
#include <conpool/histogram.hpp>

#include <cmath>

#include <conpool/pool.hpp>

#include "pool_shared.hpp"

namespace conpool {

std::chrono::nanoseconds duration_histogram::quantile_bound(double q) const noexcept {
  const std::uint64_t n = count();
  if (n == 0) return std::chrono::nanoseconds::zero();
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < finite_buckets; ++i) {
    seen += counts[i];
    if (seen >= rank && seen != 0) return bound(i);
  }
  return std::chrono::nanoseconds::max();
}

pool_histograms pool::histograms() const {
  pool_histograms h;
  for (unsigned i = 0; i < shared_->group.size(); ++i) {
    const detail::shard_timings& t = shared_->timings[i];
    t.connect.add_to(h.connect);
    t.acquire_wait.add_to(h.acquire_wait);
    t.lease_hold.add_to(h.lease_hold);
  }
  return h;
}

std::size_t pool::shards() const noexcept { return shared_->group.size(); }

}  // namespace conpool
