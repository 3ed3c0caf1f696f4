// SPDX-License-Identifier: MIT
// conpool-bench's latency record: percentiles within 1% of the exact ones, merging shards'
// parts, and memory that does not grow with the run.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "latency.hpp"

namespace conpool::bench {
namespace {

// Latencies spread log-uniformly from 100 ns to 10 s (a deterministic xorshift).
std::vector<std::uint64_t> spread(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint64_t> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    const double u = static_cast<double>(seed >> 11) * 0x1.0p-53;
    v.push_back(static_cast<std::uint64_t>(100.0 * std::pow(1e8, u)));
  }
  return v;
}

double exact(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))));
  return static_cast<double>(v[rank - 1]);
}

}  // namespace

TEST_CASE("latency: percentiles within 1% of the exact ones, max and mean exact") {
  const std::vector<std::uint64_t> v = spread(200'000, 0x9e3779b97f4a7c15ULL);
  latency_record r;
  double sum = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    r.add(static_cast<double>(i) * 1e-5, v[i]);
    sum += static_cast<double>(v[i]);
  }
  CHECK(r.count() == v.size());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    CAPTURE(q);
    const double want = exact(v, q);
    CHECK(std::abs(r.all().quantile(q) - want) <= want * 0.01);
  }
  CHECK(r.all().max() == *std::max_element(v.begin(), v.end()));
  CHECK(r.all().mean() == doctest::Approx(sum / static_cast<double>(v.size())));
  const percentiles p = summarize(r);
  CHECK(p.max_us == doctest::Approx(static_cast<double>(r.all().max()) / 1000.0));
  // Small values are exact.
  latency_record small;
  for (std::uint64_t ns = 0; ns < 100; ++ns) small.add(0, ns);
  CHECK(small.all().quantile(0.5) == 49);
  CHECK(small.all().quantile(0.01) == 0);
  // The histogram's bars hold every request.
  std::uint64_t in_bars = 0;
  for (const bucket& b : histogram(r)) in_bars += b.count;
  CHECK(in_bars == v.size());
}

TEST_CASE("latency: parts merged (a run's shards) equal one record of everything") {
  const std::vector<std::uint64_t> v = spread(100'000, 42);
  latency_record whole;
  latency_record first;
  latency_record second;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double at = static_cast<double>(i) * 1e-4;  // 10 s in all
    whole.add(at, v[i]);
    // The second part ends early: its slices are narrower until merged.
    (i % 2 == 0 || at > 5 ? first : second).add(at, v[i]);
  }
  first.merge(second);
  CHECK(first.count() == whole.count());
  CHECK(first.width_s() == whole.width_s());
  CHECK(first.slices().size() == whole.slices().size());
  for (const double q : {0.5, 0.99}) CHECK(first.all().quantile(q) == whole.all().quantile(q));
  for (std::size_t k = 0; k < whole.slices().size(); ++k) {
    CHECK(first.slices()[k].count() == whole.slices()[k].count());
  }
}

TEST_CASE("latency: memory stays fixed however long the run") {
  latency_record r;
  const std::vector<std::uint64_t> v = spread(1000, 7);
  r.add(0, 1000);
  const std::size_t at_start = r.bytes();
  // An hour at 10,000 requests a second... in 3.6 million requests.
  for (std::size_t i = 0; i < 3'600'000; ++i) r.add(static_cast<double>(i) / 1000.0, v[i % v.size()]);
  MESSAGE("a record: " << at_start << " bytes at its start, " << r.bytes() << " after an hour");
  CHECK(r.slices().size() <= latency_record::max_slices);
  CHECK(r.bytes() <= 1024 * 1024);
  const std::vector<slice> t = timeline(r, 3600);
  double total = 0;
  for (const slice& s : t) total += s.per_s * r.width_s();
  CHECK(total == doctest::Approx(3'600'000).epsilon(0.01));
  CHECK(t.front().p99_us > t.front().p50_us);
}

}  // namespace conpool::bench
