// SPDX-License-Identifier: MIT
#include "peers.hpp"

#include <cstdlib>
#include <sstream>
#include <vector>

#include "process.hpp"

namespace conpool::bench {
namespace {

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// wrk's "1.23ms" / "456.00us" / "1.01s" in µs.
double wrk_time_us(const std::string& text) {
  const double v = std::strtod(text.c_str(), nullptr);
  if (text.ends_with("us")) return v;
  if (text.ends_with("ms")) return v * 1e3;
  if (text.ends_with("s")) return v * 1e6;
  return v;
}

// The number after `key` in `text`, or 0.
double after(const std::string& text, const std::string& key) {
  const std::size_t p = text.find(key);
  return p == std::string::npos ? 0 : std::strtod(text.c_str() + p + key.size(), nullptr);
}

}  // namespace

peer_result run_wrk(const options& o) {
  peer_result r;
  r.peer = "wrk";
  const std::string wrk = find_program("wrk");
  const std::string seconds = std::to_string(std::max(1, static_cast<int>(o.duration + 0.5)));
  std::vector<std::string> argv = {wrk.empty() ? "wrk" : wrk, "-t1", "-c" + std::to_string(o.connections),
                                   "-d" + seconds + "s", "--latency", o.target->to_string()};
  r.command = join(argv);
  if (wrk.empty()) {
    r.why = "wrk is not installed (apt-get install wrk)";
    return r;
  }
  const program_result run = run_program(argv);
  const int status = run.status;
  const std::string& out = run.out;
  if (status != 0 || out.find("Requests/sec:") == std::string::npos) {
    r.why = "wrk failed (exit " + std::to_string(status) + "): " + out.substr(0, 200);
    return r;
  }
  r.ran = true;
  r.per_s = after(out, "Requests/sec:");
  r.seconds = std::strtod(seconds.c_str(), nullptr);
  if (const std::size_t p = out.find(" requests in "); p != std::string::npos) {
    const std::size_t line = out.rfind('\n', p);
    r.requests = std::strtoull(out.c_str() + line + 1, nullptr, 10);
    r.seconds = wrk_time_us(out.substr(p + 13, out.find(',', p) - p - 13)) / 1e6;
  }
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string pct, value;
    words >> pct >> value;
    if (pct == "50%") r.p50_us = wrk_time_us(value);
    if (pct == "99%") r.p99_us = wrk_time_us(value);
  }
  r.errors = static_cast<std::uint64_t>(after(out, "Non-2xx or 3xx responses:"));
  if (const std::size_t p = out.find("Socket errors:"); p != std::string::npos) {
    const std::string line = out.substr(p, out.find('\n', p) - p);
    r.errors += static_cast<std::uint64_t>(after(line, "connect ") + after(line, "read ") +
                                           after(line, "write ") + after(line, "timeout "));
  }
  return r;
}

peer_result run_redis_benchmark(const options& o, std::uint64_t requests) {
  peer_result r;
  r.peer = "redis-benchmark";
  const std::string rb = find_program("redis-benchmark");
  std::vector<std::string> argv = {rb.empty() ? "redis-benchmark" : rb,
                                   "-h", o.target->host, "-p", std::to_string(o.target->port),
                                   "-c", std::to_string(o.connections),
                                   "-n", std::to_string(requests),
                                   "-d", std::to_string(o.size),
                                   "-t", "set,get", "--csv"};
  r.command = join(argv);
  if (rb.empty()) {
    r.why = "redis-benchmark is not installed (apt-get install redis-tools)";
    return r;
  }
  const program_result run = run_program(argv);
  const int status = run.status;
  const std::string& out = run.out;
  const std::string row = o.redis_op == "get" ? "\"GET\"," : "\"SET\",";
  const std::size_t p = out.find(row);
  if (status != 0 || p == std::string::npos) {
    r.why = "redis-benchmark failed (exit " + std::to_string(status) + "): " + out.substr(0, 200);
    return r;
  }
  // "GET","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  std::vector<double> fields;
  std::istringstream cells(out.substr(p + row.size(), out.find('\n', p) - p - row.size()));
  for (std::string cell; std::getline(cells, cell, ',');) {
    if (cell.size() >= 2 && cell.front() == '"') cell = cell.substr(1, cell.size() - 2);
    fields.push_back(std::strtod(cell.c_str(), nullptr));
  }
  if (fields.size() < 7) {
    r.why = "redis-benchmark printed an unexpected CSV row";
    return r;
  }
  r.ran = true;
  r.per_s = fields[0];
  r.p50_us = fields[3] * 1e3;
  r.p99_us = fields[5] * 1e3;
  r.requests = requests;
  r.seconds = r.per_s > 0 ? static_cast<double>(requests) / r.per_s : 0;
  return r;
}

}  // namespace conpool::bench
