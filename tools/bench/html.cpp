// SPDX-License-Identifier: MIT
// The HTML report: one page, inline SVG and CSS, nothing fetched. Throughput per run pooled vs
// fresh, a latency histogram and a latency-over-time plot per run, and the peer comparisons.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "machine.hpp"
#include "report.hpp"

namespace conpool::bench {
namespace {

constexpr int width = 820;

std::string fmt(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* color(const std::string& mode) {
  if (mode == "pooled" || mode == "conpool") return "#2b6cb0";
  if (mode == "fresh") return "#dd6b20";
  return "#718096";
}

// "12.3k" style for axis labels and bar values.
std::string human(double v) {
  if (v >= 1e6) return fmt(v / 1e6, 2) + "M";
  if (v >= 1e4) return fmt(v / 1e3, 1) + "k";
  return fmt(v, v < 10 ? 1 : 0);
}

std::string us(double v) {
  if (v >= 1e6) return fmt(v / 1e6, 2) + " s";
  if (v >= 1e3) return fmt(v / 1e3, v >= 1e4 ? 0 : 1) + " ms";
  return fmt(v, v < 10 ? 1 : 0) + " µs";
}

struct bar {
  std::string series;
  double value;
  std::string note;
};

// Horizontal bars, one group a label.
std::string bar_chart(const std::vector<std::pair<std::string, std::vector<bar>>>& groups,
                      const std::string& unit) {
  double top = 0;
  std::size_t bars = 0;
  for (const auto& [label, bs] : groups) {
    for (const bar& b : bs) top = std::max(top, b.value);
    bars += bs.size();
  }
  if (top <= 0) top = 1;
  const int left = 170, bh = 18, gap = 12, plot = width - left - 250;
  const int height = static_cast<int>(bars) * bh + static_cast<int>(groups.size()) * gap + 30;
  std::ostringstream s;
  s << "<svg viewBox='0 0 " << width << " " << height << "' width='" << width << "'>";
  int y = 10;
  for (const auto& [label, bs] : groups) {
    s << "<text x='" << left - 8 << "' y='" << y + bh * static_cast<int>(bs.size()) / 2 + 5
      << "' text-anchor='end' class='label'>" << esc(label) << "</text>";
    for (const bar& b : bs) {
      const int w = std::max(1, static_cast<int>(b.value / top * plot));
      s << "<rect x='" << left << "' y='" << y << "' width='" << w << "' height='" << bh - 3
        << "' fill='" << color(b.series) << "'><title>" << esc(b.series) << ": "
        << human(b.value) << " " << unit << "</title></rect>";
      s << "<text x='" << left + w + 6 << "' y='" << y + bh - 7 << "' class='value'>"
        << esc(b.series) << " " << human(b.value) << " " << unit << esc(b.note) << "</text>";
      y += bh;
    }
    y += gap;
  }
  s << "</svg>";
  return s.str();
}

// Log-scale ticks (1, 2, 5 x 10^k) between lo and hi.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  for (double d = std::pow(10, std::floor(std::log10(lo))); d <= hi * 1.0001; d *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (d * m >= lo * 0.9999 && d * m <= hi * 1.0001) t.push_back(d * m);
    }
  }
  return t;
}

struct frame {
  int left = 60, right = 20, top = 34, bottom = 40, height = 240;
  double x0, x1, y0, y1;
  bool log_x, log_y;
  [[nodiscard]] double px(double x) const {
    const double f = log_x ? std::log(x / x0) / std::log(x1 / x0) : (x - x0) / (x1 - x0);
    return left + f * (width - left - right);
  }
  [[nodiscard]] double py(double y) const {
    const double f = log_y ? std::log(y / y0) / std::log(y1 / y0) : (y - y0) / (y1 - y0);
    return top + (1 - f) * (height - top - bottom);
  }
};

std::string axes(const frame& f, const std::vector<double>& xt, const std::vector<double>& yt,
                 const std::string& xlabel, const std::string& ylabel, bool x_us, bool y_us) {
  std::ostringstream s;
  for (double x : xt) {
    s << "<line x1='" << f.px(x) << "' x2='" << f.px(x) << "' y1='" << f.top << "' y2='"
      << f.height - f.bottom << "' class='grid'/><text x='" << f.px(x) << "' y='"
      << f.height - f.bottom + 14 << "' text-anchor='middle' class='tick'>"
      << (x_us ? us(x) : human(x)) << "</text>";
  }
  for (double y : yt) {
    s << "<line x1='" << f.left << "' x2='" << width - f.right << "' y1='" << f.py(y)
      << "' y2='" << f.py(y) << "' class='grid'/><text x='" << f.left - 4 << "' y='"
      << f.py(y) + 4 << "' text-anchor='end' class='tick'>" << (y_us ? us(y) : human(y))
      << "</text>";
  }
  s << "<text x='" << (width + f.left) / 2 << "' y='" << f.height - 6
    << "' text-anchor='middle' class='axis'>" << esc(xlabel) << "</text>"
    << "<text x='4' y='14' class='axis'>" << esc(ylabel) << "</text>";
  return s.str();
}

std::string legend(const std::vector<std::pair<std::string, std::string>>& items, int y) {
  std::ostringstream s;
  int x = width - 20;
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    x -= static_cast<int>(it->first.size()) * 7 + 30;
    s << "<line x1='" << x << "' x2='" << x + 18 << "' y1='" << y << "' y2='" << y
      << "' stroke='" << color(it->second) << "' stroke-width='3'"
      << (it->first.find("p99") != std::string::npos ? " stroke-dasharray='5 3'" : "")
      << "/><text x='" << x + 22 << "' y='" << y + 4 << "' class='tick'>" << esc(it->first)
      << "</text>";
  }
  return s.str();
}

// One distribution to draw: its buckets (non-empty ones) and the mode that made it.
struct drawn {
  std::string mode;
  std::vector<bucket> buckets;
  std::uint64_t total = 0;
};

// Share of the total per bucket, one outline a mode, over a log-scale time axis.
std::string distribution_chart(const std::vector<drawn>& ds, const std::string& xlabel,
                               const std::string& ylabel) {
  double lo = 1e18, hi = 0, top = 0;
  for (const drawn& d : ds) {
    for (const bucket& b : d.buckets) {
      lo = std::min(lo, b.low_us);
      hi = std::max(hi, b.high_us);
      top = std::max(top, static_cast<double>(b.count) / static_cast<double>(d.total));
    }
  }
  if (hi <= 0) return "<p>no samples</p>";
  frame f{.x0 = lo, .x1 = hi, .y0 = 0, .y1 = top * 1.1, .log_x = true, .log_y = false};
  std::ostringstream s;
  s << "<svg viewBox='0 0 " << width << " " << f.height << "' width='" << width << "'>";
  std::vector<double> yt;
  for (int i = 0; i <= 4; ++i) yt.push_back(f.y1 * i / 4);
  s << axes(f, log_ticks(lo, hi), {}, xlabel, ylabel, true, false);
  for (double y : yt) {
    s << "<text x='" << f.left - 4 << "' y='" << f.py(y) + 4 << "' text-anchor='end' class='tick'>"
      << fmt(y * 100, 0) << "%</text>";
  }
  std::vector<std::pair<std::string, std::string>> keys;
  for (const drawn& d : ds) {
    if (d.buckets.empty()) continue;  // a run that completed nothing
    const double n = static_cast<double>(d.total);
    std::ostringstream pts;
    pts << f.px(d.buckets.front().low_us) << "," << f.py(0);
    for (const bucket& b : d.buckets) {
      const double y = f.py(static_cast<double>(b.count) / n);
      pts << " " << f.px(b.low_us) << "," << y << " " << f.px(b.high_us) << "," << y;
    }
    pts << " " << f.px(d.buckets.back().high_us) << "," << f.py(0);
    s << "<polygon points='" << pts.str() << "' fill='" << color(d.mode)
      << "' fill-opacity='0.35' stroke='" << color(d.mode) << "'/>";
    keys.emplace_back(d.mode, d.mode);
  }
  s << legend(keys, 10) << "</svg>";
  return s.str();
}

// Share of requests per latency bucket, one outline a mode.
std::string histogram_chart(const std::vector<const run_result*>& runs) {
  std::vector<drawn> ds;
  for (const run_result* r : runs) ds.push_back({r->mode, histogram(r->latency), r->latency.count()});
  return distribution_chart(ds, "latency (log scale)", "share of requests");
}

// One of the pool's histograms (1 us x 2^i buckets; the first drawn from 0.5 us, the overflow
// to twice the last bound), one outline a mode.
std::string pool_histogram_chart(const std::vector<const run_result*>& runs,
                                 duration_histogram pool_histograms::*which,
                                 const std::string& what) {
  std::vector<drawn> ds;
  for (const run_result* r : runs) {
    const duration_histogram& h = r->timings.*which;
    drawn d{r->mode, {}, h.count()};
    for (std::size_t i = 0; i < duration_histogram::bucket_count; ++i) {
      if (h.counts[i] == 0) continue;
      const double high = i < duration_histogram::finite_buckets
                              ? static_cast<double>(duration_histogram::bound(i).count()) / 1e3
                              : 2 * static_cast<double>(duration_histogram::bound(i - 1).count()) / 1e3;
      d.buckets.push_back({high / 2, high, h.counts[i]});
    }
    ds.push_back(std::move(d));
  }
  return distribution_chart(ds, what + " (log scale)", "share");
}

// p50 (solid) and p99 (dashed) per slice of the run, one colour a mode.
std::string timeline_chart(const std::vector<const run_result*>& runs) {
  double lo = 1e18, hi = 0, end = 0;
  std::vector<std::vector<slice>> ts;
  for (const run_result* r : runs) {
    ts.push_back(timeline(r->latency, r->seconds));
    end = std::max(end, r->seconds);
    for (const slice& sl : ts.back()) {
      if (sl.per_s <= 0) continue;
      lo = std::min(lo, sl.p50_us);
      hi = std::max(hi, sl.p99_us);
    }
  }
  if (hi <= 0) return "<p>no samples</p>";
  lo = std::pow(10, std::floor(std::log10(lo)));
  hi = std::pow(10, std::ceil(std::log10(hi)));
  frame f{.x0 = 0, .x1 = end, .y0 = lo, .y1 = hi, .log_x = false, .log_y = true};
  std::vector<double> xt;
  for (int i = 0; i <= 5; ++i) xt.push_back(end * i / 5);
  std::ostringstream s;
  s << "<svg viewBox='0 0 " << width << " " << f.height << "' width='" << width << "'>";
  s << axes(f, {}, log_ticks(lo, hi), "time into the run", "latency", false, true);
  for (double x : xt) {
    s << "<text x='" << f.px(x) << "' y='" << f.height - f.bottom + 14
      << "' text-anchor='middle' class='tick'>" << fmt(x, 2) << " s</text>";
  }
  std::vector<std::pair<std::string, std::string>> keys;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      std::ostringstream pts;
      for (const slice& sl : ts[i]) {
        if (sl.per_s <= 0) continue;
        const double v = which == 0 ? sl.p50_us : sl.p99_us;
        pts << f.px(std::min(sl.at_s, end)) << "," << f.py(std::clamp(v, lo, hi)) << " ";
      }
      s << "<polyline points='" << pts.str() << "' fill='none' stroke='" << color(runs[i]->mode)
        << "' stroke-width='2'" << (which ? " stroke-dasharray='5 3'" : "") << "/>";
      keys.emplace_back(runs[i]->mode + (which ? " p99" : " p50"), runs[i]->mode);
    }
  }
  s << legend(keys, 10) << "</svg>";
  return s.str();
}

constexpr const char* style = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:880px;color:#1a202c}
h1{margin-bottom:0}h2{margin-top:2em;border-bottom:1px solid #e2e8f0}
.meta{color:#4a5568}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:3px 9px;text-align:right;border-bottom:1px solid #edf2f7}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
svg{display:block;margin:.5em 0}.label{font-size:13px}.value,.tick{font-size:11px;fill:#4a5568}
.axis{font-size:12px;fill:#2d3748}.grid{stroke:#edf2f7}code{background:#f7fafc;padding:1px 4px}
)";

}  // namespace

void write_html(const std::string& path, const report& r) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("--html " + path + ": cannot write the file");
  const machine m = machine::current();
  out << "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>conpool-bench "
      << esc(m.date) << "</title><style>" << style << "</style></head><body>"
      << "<h1>conpool-bench</h1><p class='meta'><code>" << esc(r.command) << "</code><br>"
      << esc(m.date) << " · " << esc(m.host) << " · " << esc(m.kernel) << " · " << m.cpus
      << " × " << esc(m.cpu) << " · " << fmt(m.memory_gib, 1) << " GiB</p>";

  // Runs grouped by name, in order of first appearance.
  std::vector<std::string> names;
  std::map<std::string, std::vector<const run_result*>> by_name;
  for (const run_result& run : r.runs) {
    if (by_name[run.name].empty()) names.push_back(run.name);
    by_name[run.name].push_back(&run);
  }

  out << "<h2>Throughput</h2><p>Requests per second, through the pool and with a fresh "
         "connection per request.</p>";
  std::vector<std::pair<std::string, std::vector<bar>>> groups;
  for (const std::string& name : names) {
    std::vector<bar> bars;
    for (const run_result* run : by_name[name]) {
      const auto up = run->mode == "pooled" ? r.speedup(name) : std::nullopt;
      bars.push_back({run->mode, run->per_s(), up ? " (" + fmt(*up, 1) + "x fresh)" : ""});
    }
    groups.emplace_back(name, bars);
  }
  out << bar_chart(groups, "req/s");

  out << "<h2>Summary</h2><table><tr><th>run</th><th>mode</th><th>req/s</th><th>p50</th>"
         "<th>p99</th><th>p99.9</th><th>created</th><th>reused</th><th>errors</th></tr>";
  for (const run_result& run : r.runs) {
    const percentiles p = summarize(run.latency);
    out << "<tr><td title='" << esc(run.detail) << "'>" << esc(run.name) << "</td><td>"
        << esc(run.mode) << "</td><td>" << human(run.per_s()) << "</td><td>" << us(p.p50_us)
        << "</td><td>" << us(p.p99_us) << "</td><td>" << us(p.p999_us) << "</td><td>"
        << run.created << "</td><td>" << run.reused << "</td><td>" << run.errors << "</td></tr>";
  }
  out << "</table>";

  for (const std::string& name : names) {
    const std::vector<const run_result*>& runs = by_name[name];
    out << "<h2>" << esc(name) << "</h2><p class='meta'>" << esc(runs.front()->detail) << "</p>"
        << "<h3>Latency distribution</h3>" << histogram_chart(runs)
        << "<h3>Latency over time</h3>" << timeline_chart(runs)
        << "<h3>Pool: connect time</h3><p class='meta'>Opens that succeeded: resolve, "
           "connect, TLS.</p>"
        << pool_histogram_chart(runs, &pool_histograms::connect, "connect time")
        << "<h3>Pool: acquire wait</h3><p class='meta'>From acquire to lease: 0 for an idle "
           "connection (drawn up to 1 µs), the open for a new one, the wait at the limit.</p>"
        << pool_histogram_chart(runs, &pool_histograms::acquire_wait, "acquire wait")
        << "<h3>Pool: lease hold</h3><p class='meta'>From a lease to its end.</p>"
        << pool_histogram_chart(runs, &pool_histograms::lease_hold, "lease hold");
  }

  if (!r.comparisons.empty()) {
    out << "<h2>Against other clients</h2>";
    for (const comparison& c : r.comparisons) {
      const run_result& ours = r.runs[c.ours];
      out << "<p>" << esc(ours.name) << ", " << ours.concurrency << " connections. <code>"
          << esc(c.theirs.command) << "</code></p>";
      if (!c.theirs.ran) {
        out << "<p>" << esc(c.theirs.peer) << " not run: " << esc(c.theirs.why) << "</p>";
        continue;
      }
      const double ratio = c.theirs.per_s > 0 ? ours.per_s() / c.theirs.per_s : 0;
      out << bar_chart({{"req/s", {{"conpool", ours.per_s(), " (" + fmt(ratio, 2) + "x)"},
                                   {c.theirs.peer, c.theirs.per_s, ""}}}},
                       "req/s");
    }
  }
  out << "</body></html>\n";
  if (!out) throw std::runtime_error("--html " + path + ": write failed");
}

}  // namespace conpool::bench
