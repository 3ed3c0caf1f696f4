// SPDX-License-Identifier: MIT
#pragma once
// A /metrics page for Prometheus (conpool-bench and conpool-proxy --metrics, and the tests'
// scrape target): a thread of its own with a listener on a loopback or other local address,
// answering `GET /metrics` with the Prometheus exposition of the pools published to it (and
// the program's own sections), `404` for other paths and `405` for other methods, one request
// a connection (Connection: close), each connection given 2 s in all. The pools are read from
// this thread, as any outside reader does (no lock in the pool, no pause of its shards);
// publishing is under a mutex, so a pool is never read after it is withdrawn.

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <conpool/address.hpp>
#include <conpool/metrics.hpp>

namespace conpool::tools {

class metrics_server {
 public:
  /// Listens on `at` ("127.0.0.1:9464", "[::1]:0"). Throws std::invalid_argument naming the
  /// address when it is not an IP literal with a port, std::runtime_error when it cannot be
  /// bound (in use, not local).
  explicit metrics_server(const std::string& at);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// Where it listens (the port chosen when asked for 0).
  [[nodiscard]] const socket_address& address() const noexcept { return address_; }
  /// Serves `p` until `withdraw(p)`. One pool may go unnamed; several need a `name` each (their
  /// `pool` label). Throws std::invalid_argument for a pool published twice, a name taken, or
  /// a second pool where one has no name.
  void publish(const pool& p, std::string name = {});
  /// Stops serving `p`; when it returns, no request reads it any more.
  void withdraw(const pool& p);
  /// Adds metrics of the program's own after the pools' (`write` writes whole families, with
  /// their HELP and TYPE lines, and may be called on the server's thread until
  /// `clear_sections` or the server's end).
  void add_section(std::function<void(std::ostream&)> write);
  /// Drops the sections added.
  void clear_sections();
  /// Requests answered so far (any path).
  [[nodiscard]] std::uint64_t served() const;

  /// Publishes a pool for a scope (nothing when the server is null).
  class publication {
   public:
    publication(metrics_server* s, const pool& p) : server_(s), pool_(&p) {
      if (server_ != nullptr) server_->publish(p);
    }
    ~publication() {
      if (server_ != nullptr) server_->withdraw(*pool_);
    }
    publication(const publication&) = delete;
    publication& operator=(const publication&) = delete;

   private:
    metrics_server* server_;
    const pool* pool_;
  };

 private:
  void serve();
  void answer(int fd);
  // Waits for `events` on `fd` until `until`; false at the deadline, on an error, or when
  // the server stops.
  bool wait_for(int fd, short events, std::chrono::steady_clock::time_point until);
  std::string page();

  int listen_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd: the destructor wakes the thread
  socket_address address_;
  mutable std::mutex mutex_;
  std::vector<metrics_source> pools_;
  std::vector<std::function<void(std::ostream&)>> sections_;
  std::uint64_t served_ = 0;
  std::thread thread_;
};

}  // namespace conpool::tools
