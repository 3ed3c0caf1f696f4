// SPDX-License-Identifier: MIT
#pragma once
// The embedded peer of the presets: an io_uring echo server on its own thread and shard, with
// one listener per "server" of a preset. Started by the constructor, stopped by the destructor
// (which needs no shard on the calling thread).

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace conpool::bench {

class echo_server {
 public:
  /// Starts `listeners` listeners on 127.0.0.1, ephemeral ports. Throws std::system_error when
  /// one cannot be opened.
  explicit echo_server(int listeners);
  ~echo_server();
  echo_server(const echo_server&) = delete;
  echo_server& operator=(const echo_server&) = delete;

  [[nodiscard]] const std::vector<std::uint16_t>& ports() const noexcept { return ports_; }
  /// Connections held now, the most held at once, and accepted in all (any thread).
  [[nodiscard]] int open_now() const noexcept { return counts_.open_now.load(); }
  [[nodiscard]] int peak() const noexcept { return counts_.peak.load(); }
  [[nodiscard]] int accepted() const noexcept { return counts_.accepted.load(); }

  struct counts {
    std::atomic<int> open_now{0};
    std::atomic<int> peak{0};
    std::atomic<int> accepted{0};
  };

 private:
  void run(int listeners);

  std::thread thread_;
  std::vector<std::uint16_t> ports_;
  counts counts_;
  int ring_fd_ = -1;
  std::atomic<int> state_{0};  // 0 starting, 1 serving, 2 failed to start
  int error_ = 0;
};

}  // namespace conpool::bench
