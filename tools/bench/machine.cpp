// SPDX-License-Identifier: MIT
#include "machine.hpp"

#include <sys/utsname.h>

#include <ctime>
#include <fstream>
#include <thread>

namespace conpool::bench {
namespace {

// The value after "key<spaces>:" in a /proc file, or empty.
std::string proc_value(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key)) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return {};
}

}  // namespace

machine machine::current() {
  machine m;
  utsname u{};
  if (::uname(&u) == 0) {
    m.host = u.nodename;
    m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  }
  m.cpu = proc_value("/proc/cpuinfo", "model name");
  m.cpus = std::thread::hardware_concurrency();
  m.memory_gib = std::strtod(proc_value("/proc/meminfo", "MemTotal").c_str(), nullptr) / 1048576.0;
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  m.date = buf;
  return m;
}

}  // namespace conpool::bench
