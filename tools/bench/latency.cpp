// SPDX-License-Identifier: MIT
#include "latency.hpp"

#include <algorithm>
#include <cmath>

namespace conpool::bench {
namespace {

double at(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) ;
  return sorted[std::min(sorted.size(), std::max<std::size_t>(i, 1)) - 1] / 1000.0;
}

std::vector<std::uint32_t> sorted_latencies(const std::vector<sample>& samples) {
  std::vector<std::uint32_t> v;
  v.reserve(samples.size());
  for (const sample& s : samples) v.push_back(s.latency_ns);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

percentiles summarize(const std::vector<sample>& samples) {
  percentiles p;
  if (samples.empty()) return p;
  const std::vector<std::uint32_t> v = sorted_latencies(samples);
  double sum = 0;
  for (std::uint32_t x : v) sum += x;
  p.mean_us = sum / static_cast<double>(v.size()) / 1000.0;
  p.p50_us = at(v, 0.50);
  p.p90_us = at(v, 0.90);
  p.p99_us = at(v, 0.99);
  p.p999_us = at(v, 0.999);
  p.max_us = v.back() / 1000.0;
  return p;
}

std::vector<bucket> histogram(const std::vector<sample>& samples) {
  std::vector<bucket> out;
  if (samples.empty()) return out;
  const std::vector<std::uint32_t> v = sorted_latencies(samples);
  constexpr double step = 1.189207115002721;  // 2^(1/4)
  double low = std::pow(step, std::floor(std::log(std::max(v.front(), 1u) / 1000.0) /
                                        std::log(step)));
  std::size_t i = 0;
  while (i < v.size()) {
    const double high = low * step;
    bucket b{low, high, 0};
    while (i < v.size() && v[i] / 1000.0 < high) {
      ++b.count;
      ++i;
    }
    out.push_back(b);
    low = high;
  }
  return out;
}

std::vector<slice> timeline(const std::vector<sample>& samples, double seconds, int count) {
  std::vector<slice> out;
  if (samples.empty() || seconds <= 0 || count <= 0) return out;
  const double width_us = seconds * 1e6 / count;
  std::vector<std::vector<std::uint32_t>> parts(static_cast<std::size_t>(count));
  for (const sample& s : samples) {
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(s.start_us / width_us),
                                         parts.size() - 1);
    parts[k].push_back(s.latency_ns);
  }
  for (std::size_t k = 0; k < parts.size(); ++k) {
    std::vector<std::uint32_t>& v = parts[k];
    std::sort(v.begin(), v.end());
    out.push_back({static_cast<double>(k) * width_us / 1e6,
                   static_cast<double>(v.size()) / (width_us / 1e6), at(v, 0.5), at(v, 0.99)});
  }
  return out;
}

}  // namespace conpool::bench
