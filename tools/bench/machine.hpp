// SPDX-License-Identifier: MIT
#pragma once
// The machine a report was measured on.

#include <string>

namespace conpool::bench {

struct machine {
  std::string host;    ///< node name
  std::string kernel;  ///< "Linux 6.1.0 x86_64"
  std::string cpu;     ///< /proc/cpuinfo's model name
  unsigned cpus = 0;
  double memory_gib = 0;
  std::string date;    ///< UTC, ISO 8601

  static machine current();
};

}  // namespace conpool::bench
