// SPDX-License-Identifier: MIT
#include "latency.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace conpool::bench {
namespace {

constexpr unsigned top_bits = 40;  // values up to 2^40 ns
constexpr unsigned run_bits = 7;    // the whole run: under 0.8% off
constexpr unsigned slice_bits = 4;  // a slice of time: under 6.3% off (a chart's line)

}  // namespace

// ---- log_histogram ----------------------------------------------------------------------------

log_histogram::log_histogram(unsigned sub_bits)
    : bits_(sub_bits), counts_(static_cast<std::size_t>(top_bits + 1 - sub_bits) << sub_bits) {}

std::size_t log_histogram::index(std::uint64_t ns) const noexcept {
  const std::uint64_t sub = std::uint64_t{1} << bits_;
  if (ns < sub) return static_cast<std::size_t>(ns);
  // Octave k >= 1 holds [sub << (k - 1), sub << k) in `sub` buckets of 2^(k-1).
  const unsigned octave = static_cast<unsigned>(std::bit_width(ns)) - bits_;
  const std::size_t i = (static_cast<std::size_t>(octave) << bits_) +
                        static_cast<std::size_t>((ns >> (octave - 1)) - sub);
  return std::min(i, counts_.size() - 1);
}

double log_histogram::low(std::size_t i) const noexcept {
  const std::size_t sub = std::size_t{1} << bits_;
  if (i < sub) return static_cast<double>(i);
  const std::size_t octave = i >> bits_;
  const std::size_t at = i & (sub - 1);
  return std::ldexp(static_cast<double>(sub + at), static_cast<int>(octave) - 1);
}

void log_histogram::add(std::uint64_t ns) noexcept {
  ++counts_[index(ns)];
  ++count_;
  max_ = std::max(max_, ns);
  min_ = std::min(min_, ns);
  sum_ += static_cast<double>(ns);
}

void log_histogram::merge(const log_histogram& o) noexcept {
  for (std::size_t i = 0; i < counts_.size() && i < o.counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
  sum_ += o.sum_;
}

double log_histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (q >= 1) return static_cast<double>(max_);
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // Buckets of width 1 (below 2^(bits + 1)) hold one value each: that value.
      const double mid = (low(i) + low(i + 1) - (i < (std::size_t{2} << bits_) ? 1 : 0)) / 2;
      return std::clamp(mid, static_cast<double>(min()), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

// ---- latency_record ---------------------------------------------------------------------------

latency_record::latency_record() : all_(run_bits) {}

void latency_record::add(double at_s, std::uint64_t ns) {
  all_.add(ns);
  auto k = static_cast<std::size_t>(std::max(at_s, 0.0) / width_s_);
  while (k >= max_slices) {
    widen();
    k = static_cast<std::size_t>(std::max(at_s, 0.0) / width_s_);
  }
  while (slices_.size() <= k) slices_.emplace_back(slice_bits);
  slices_[k].add(ns);
}

void latency_record::widen() {
  std::vector<log_histogram> wider;
  wider.reserve(max_slices);
  for (std::size_t i = 0; i < slices_.size(); i += 2) {
    wider.push_back(std::move(slices_[i]));
    if (i + 1 < slices_.size()) wider.back().merge(slices_[i + 1]);
  }
  slices_ = std::move(wider);
  width_s_ *= 2;
}

void latency_record::merge(const latency_record& o) {
  all_.merge(o.all_);
  latency_record other = o;
  while (width_s_ < other.width_s_) widen();
  while (other.width_s_ < width_s_) other.widen();
  if (slices_.size() < other.slices_.size()) {
    slices_.resize(other.slices_.size(), log_histogram(slice_bits));
  }
  for (std::size_t i = 0; i < other.slices_.size(); ++i) slices_[i].merge(other.slices_[i]);
}

std::size_t latency_record::bytes() const noexcept {
  std::size_t n = all_.bytes();
  for (const log_histogram& h : slices_) n += h.bytes();
  return n;
}

// ---- what the reports show ------------------------------------------------------------------

percentiles summarize(const latency_record& r) {
  percentiles p;
  const log_histogram& h = r.all();
  if (h.count() == 0) return p;
  p.mean_us = h.mean() / 1000.0;
  p.p50_us = h.quantile(0.50) / 1000.0;
  p.p90_us = h.quantile(0.90) / 1000.0;
  p.p99_us = h.quantile(0.99) / 1000.0;
  p.p999_us = h.quantile(0.999) / 1000.0;
  p.max_us = static_cast<double>(h.max()) / 1000.0;
  return p;
}

std::vector<bucket> histogram(const latency_record& r) {
  std::vector<bucket> out;
  const log_histogram& h = r.all();
  if (h.count() == 0) return out;
  // Quarter octaves, each bar collecting the fine buckets whose middle falls in it.
  constexpr double step = 1.189207115002721;  // 2^(1/4)
  const double first = std::max(static_cast<double>(h.min()), 1.0) / 1000.0;
  const double low = std::pow(step, std::floor(std::log(first) / std::log(step)));
  h.for_each([&](double lo_ns, double hi_ns, std::uint64_t n) {
    const double mid_us = std::max((lo_ns + hi_ns) / 2, 1.0) / 1000.0;
    const auto k = static_cast<std::size_t>(std::max(0.0, std::floor(std::log(mid_us / low) / std::log(step))));
    while (out.size() <= k) {
      const double b = low * std::pow(step, static_cast<double>(out.size()));
      out.push_back({b, b * step, 0});
    }
    out[k].count += n;
  });
  return out;
}

std::vector<slice> timeline(const latency_record& r, double seconds) {
  std::vector<slice> out;
  const double w = r.width_s();
  const log_histogram none(slice_bits);
  // The whole run, slices without requests included (a stall shows as none); a last slice cut
  // to under a quarter of the width by the run's end is left out (its rate would be noise).
  for (std::size_t k = 0; static_cast<double>(k) * w < seconds; ++k) {
    const double at = static_cast<double>(k) * w;
    const double span = std::min(w, seconds - at);
    if (span < w / 4 && k > 0) break;
    const log_histogram& h = k < r.slices().size() ? r.slices()[k] : none;
    out.push_back({at, static_cast<double>(h.count()) / span, h.quantile(0.5) / 1000.0,
                   h.quantile(0.99) / 1000.0});
  }
  return out;
}

}  // namespace conpool::bench
