// SPDX-License-Identifier: MIT
#pragma once
/// `config`: a pool's limits, timeouts, health check and hooks (defaults as in the seed design).
///
/// Example:
///   config c = default_config();
///   c.max_connections_per_endpoint = 50;
///   c.max_idle_time = std::chrono::seconds(30);
///   c.health_check = [](flow& f) -> task<bool> { ... PING / PONG ... };
///   pool p(c);   // throws std::invalid_argument naming a field whose value is out of range

#include <chrono>
#include <functional>
#include <optional>

#include <conpool/endpoint.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool {

struct config {
  /// Connections per endpoint at most (idle, in use and being opened or closed). >= 1.
  int max_connections_per_endpoint = 10;
  /// An idle connection older than this (since its last release) is closed. > 0.
  std::chrono::duration<double> max_idle_time{60.0};
  /// A connection older than this (since it was opened) is closed instead of reused. > 0.
  std::chrono::duration<double> max_connection_lifetime{300.0};
  /// Uses after which a connection is retired; none = unlimited. >= 1.
  std::optional<int> max_connection_uses;
  /// Run on a connection before it is reused (taken from the idle stack, given back to a
  /// waiting task, or arrived from another shard; not on a connection just opened); false, or
  /// an exception, closes it and the caller gets another.
  std::function<task<bool>(flow&)> health_check;
  /// Strict mode: before every reuse, ask the kernel whether the peer closed, reset or wrote
  /// (one non-blocking recv(MSG_PEEK) syscall a reuse). Off: the pool relies on what its
  /// standing operations already told it (a watcher on each idle connection, a POLLRDHUP
  /// monitor on each connection), which costs nothing per request but can miss a FIN that
  /// arrives after the shard's last entry into the kernel.
  bool check_on_reuse = false;
  /// Bound on opening a connection (name resolution and TCP connect); none = no bound. > 0.
  std::optional<std::chrono::duration<double>> connect_timeout{10.0};
  /// Bound on waiting for a connection when the endpoint is at its limit
  /// (`errc::acquire_timeout`); none = wait as long as it takes. >= 0.
  std::optional<std::chrono::duration<double>> acquire_timeout;
  /// How long resolved addresses of a host name are reused. >= 0.
  std::chrono::duration<double> dns_ttl{300.0};
  /// Called on the shard's thread when a connection is opened, closed, or handed out again.
  std::function<void(const endpoint&)> on_connection_created;
  std::function<void(const endpoint&)> on_connection_closed;
  std::function<void(const endpoint&)> on_connection_reused;

  /// Throws std::invalid_argument naming the first field out of range and its value.
  void validate() const;
};

/// The defaults above, as the seed's `default_config`.
config default_config();

}  // namespace conpool
