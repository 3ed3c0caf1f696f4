// SPDX-License-Identifier: MIT
#pragma once
// A one-line progress bar on standard error, drawn only on a terminal, at most ten times a
// second.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace conpool::bench {

class progress {
 public:
  explicit progress(bool quiet) : enabled_(!quiet && ::isatty(STDERR_FILENO) == 1) {}

  /// Starts a bar for one run.
  void begin(std::string label) {
    label_ = std::move(label);
    last_ = {};
  }
  /// `fraction` done (0..1) and requests so far; cheap when not drawing.
  void update(double fraction, std::uint64_t requests, double per_s) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    constexpr int width = 30;
    const int filled = static_cast<int>(std::min(fraction, 1.0) * width);
    std::fprintf(stderr, "\r\033[K%-34s [%s%s] %3d%% %10llu req %9.0f/s", label_.c_str(),
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(),
                 static_cast<int>(std::min(fraction, 1.0) * 100),
                 static_cast<unsigned long long>(requests), per_s);
    std::fflush(stderr);
  }
  /// Clears the bar.
  void end() {
    if (!enabled_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::string label_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace conpool::bench
