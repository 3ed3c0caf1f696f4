// SPDX-License-Identifier: MIT
// The terminal table and the JSON file.
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <stdexcept>

#include "machine.hpp"

namespace conpool::bench {
namespace {

std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(const std::string& s, std::size_t width, bool right = true) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// A JSON number: finite, or 0.
std::string num(double v) { return std::isfinite(v) ? fixed(v, 3) : "0"; }

}  // namespace

std::optional<double> report::speedup(const std::string& name) const {
  double pooled = 0;
  double fresh = 0;
  for (const run_result& r : runs) {
    if (r.name != name) continue;
    (r.mode == "pooled" ? pooled : fresh) = r.per_s();
  }
  if (pooled <= 0 || fresh <= 0) return std::nullopt;
  return pooled / fresh;
}

void print_table(std::ostream& os, const report& r) {
  std::size_t name_width = 18;
  for (const run_result& run : r.runs) name_width = std::max(name_width, run.name.size() + 2);
  os << pad("run", name_width, false) << pad("mode", 8, false) << pad("req/s", 11) << pad("p50 us", 10)
     << pad("p99 us", 10) << pad("p99.9 us", 10) << pad("created", 9) << pad("reused", 9)
     << pad("errors", 8) << pad("pooled/fresh", 14) << "\n";
  for (const run_result& run : r.runs) {
    const percentiles p = summarize(run.latency);
    const std::optional<double> up = run.mode == "pooled" ? r.speedup(run.name) : std::nullopt;
    os << pad(run.name, name_width, false) << pad(run.mode, 8, false) << pad(fixed(run.per_s(), 0), 11)
       << pad(fixed(p.p50_us), 10) << pad(fixed(p.p99_us), 10) << pad(fixed(p.p999_us), 10)
       << pad(std::to_string(run.created), 9) << pad(std::to_string(run.reused), 9)
       << pad(std::to_string(run.errors), 8) << pad(up ? fixed(*up, 2) + "x" : "", 14) << "\n";
    if (!run.first_error.empty()) os << "  first error: " << run.first_error << "\n";
    if (run.idle > 0) {
      os << "  pool memory: " << run.idle << " idle connections over " << run.endpoints
         << " endpoints, "
         << (run.bytes_per_idle > 0 ? fixed(run.bytes_per_idle, 0) + " B per idle connection"
                                    : std::string("heap not measured (a sanitizer's allocator)"))
         << "\n";
    }
  }
  for (const comparison& c : r.comparisons) {
    const run_result& ours = r.runs[c.ours];
    const percentiles p = summarize(ours.latency);
    os << "\n" << ours.name << ", " << ours.concurrency << " connections:\n";
    os << "  " << pad("conpool", 16, false) << pad(fixed(ours.per_s(), 0), 11) << " req/s  p50 "
       << pad(fixed(p.p50_us), 8) << " us  p99 " << pad(fixed(p.p99_us), 8) << " us  errors "
       << ours.errors << "\n";
    if (!c.theirs.ran) {
      os << "  " << pad(c.theirs.peer, 16, false) << "not run: " << c.theirs.why << "\n";
      continue;
    }
    os << "  " << pad(c.theirs.peer, 16, false) << pad(fixed(c.theirs.per_s, 0), 11)
       << " req/s  p50 " << pad(fixed(c.theirs.p50_us), 8) << " us  p99 "
       << pad(fixed(c.theirs.p99_us), 8) << " us  errors " << c.theirs.errors << "\n";
    os << "  conpool / " << c.theirs.peer << ": "
       << fixed(c.theirs.per_s > 0 ? ours.per_s() / c.theirs.per_s : 0, 2) << "x\n";
  }
}

void write_json(const std::string& path, const report& r) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("--json " + path + ": cannot write the file");
  const machine m = machine::current();
  out << "{\n  \"tool\": \"conpool-bench\",\n  \"command\": " << quoted(r.command) << ",\n"
      << "  \"machine\": {\"host\": " << quoted(m.host) << ", \"kernel\": " << quoted(m.kernel)
      << ", \"cpu\": " << quoted(m.cpu) << ", \"cpus\": " << m.cpus
      << ", \"memory_gib\": " << num(m.memory_gib) << ", \"date\": " << quoted(m.date) << "},\n"
      << "  \"runs\": [";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const run_result& run = r.runs[i];
    const percentiles p = summarize(run.latency);
    out << (i ? "," : "") << "\n    {\"name\": " << quoted(run.name)
        << ", \"mode\": " << quoted(run.mode) << ", \"workload\": " << quoted(run.detail)
        << ", \"concurrency\": " << run.concurrency << ", \"rounds\": " << run.rounds
        << ", \"requests\": " << run.requests << ", \"errors\": " << run.errors
        << ", \"first_error\": " << quoted(run.first_error) << ", \"seconds\": " << num(run.seconds)
        << ", \"requests_per_s\": " << num(run.per_s())
        << ", \"connections_created\": " << run.created
        << ", \"connections_reused\": " << run.reused;
    if (run.idle > 0) {
      out << ", \"idle_connections\": " << run.idle << ", \"endpoints\": " << run.endpoints;
    }
    if (run.bytes_per_idle > 0) out << ", \"pool_bytes_per_idle\": " << num(run.bytes_per_idle);
    if (const auto up = run.mode == "pooled" ? r.speedup(run.name) : std::nullopt) {
      out << ", \"pooled_over_fresh\": " << num(*up);
    }
    out << ",\n     \"latency_us\": {\"mean\": " << num(p.mean_us) << ", \"p50\": " << num(p.p50_us)
        << ", \"p90\": " << num(p.p90_us) << ", \"p99\": " << num(p.p99_us)
        << ", \"p99_9\": " << num(p.p999_us) << ", \"max\": " << num(p.max_us) << "},\n"
        << "     \"histogram\": [";
    const std::vector<bucket> h = histogram(run.latency);
    for (std::size_t k = 0; k < h.size(); ++k) {
      out << (k ? ", " : "") << "[" << num(h[k].low_us) << ", " << num(h[k].high_us) << ", "
          << h[k].count << "]";
    }
    out << "],\n     \"timeline\": [";
    const std::vector<slice> t = timeline(run.latency, run.seconds);
    for (std::size_t k = 0; k < t.size(); ++k) {
      out << (k ? ", " : "") << "[" << num(t[k].at_s) << ", " << num(t[k].per_s) << ", "
          << num(t[k].p50_us) << ", " << num(t[k].p99_us) << "]";
    }
    out << "]}";
  }
  out << "\n  ],\n  \"comparisons\": [";
  for (std::size_t i = 0; i < r.comparisons.size(); ++i) {
    const comparison& c = r.comparisons[i];
    const run_result& ours = r.runs[c.ours];
    out << (i ? "," : "") << "\n    {\"target\": " << quoted(ours.name)
        << ", \"connections\": " << ours.concurrency << ", \"peer\": " << quoted(c.theirs.peer)
        << ", \"peer_command\": " << quoted(c.theirs.command)
        << ", \"peer_ran\": " << (c.theirs.ran ? "true" : "false")
        << ", \"peer_why\": " << quoted(c.theirs.why)
        << ", \"conpool_requests_per_s\": " << num(ours.per_s())
        << ", \"peer_requests_per_s\": " << num(c.theirs.per_s)
        << ", \"peer_p50_us\": " << num(c.theirs.p50_us)
        << ", \"peer_p99_us\": " << num(c.theirs.p99_us)
        << ", \"peer_errors\": " << c.theirs.errors << ", \"ratio\": "
        << num(c.theirs.per_s > 0 ? ours.per_s() / c.theirs.per_s : 0) << "}";
  }
  out << "\n  ]\n}\n";
  if (!out) throw std::runtime_error("--json " + path + ": write failed");
}

}  // namespace conpool::bench
