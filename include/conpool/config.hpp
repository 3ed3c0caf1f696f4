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

#include <conpool/close_reason.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool {

/// How opens to an endpoint are paced after they fail (gRPC's connection backoff): after `n`
/// failed opens in a row the next may start `min(cap, base * factor^(n-1))` later, that delay
/// spread by +-`jitter` (a fraction) so that shards and processes do not retry in step. A
/// successful open resets it.
struct connect_backoff_settings {
  std::chrono::duration<double> base{0.05};  ///< > 0
  double factor = 2.0;                       ///< >= 1
  std::chrono::duration<double> cap{5.0};    ///< >= base
  double jitter = 0.2;                       ///< 0 to 1
};

struct config {
  /// Connections per endpoint at most (idle, in use and being opened or closed). 1 to INT_MAX:
  /// memory follows the connections held at once, not this limit.
  int max_connections_per_endpoint = 10;
  /// An idle connection older than this (since its last release) is closed. > 0.
  std::chrono::duration<double> max_idle_time{60.0};
  /// A connection older than this (since it was opened) is closed instead of reused. > 0.
  std::chrono::duration<double> max_connection_lifetime{300.0};
  /// Each connection's lifetime is max_connection_lifetime shortened by a random fraction of
  /// up to this, so that connections opened together (a burst, warming) do not all expire in
  /// one sweep (HikariCP takes off up to 2.5%). 0 to 0.5.
  double lifetime_jitter = 0.025;
  /// Uses after which a connection is retired; none = unlimited. >= 1.
  std::optional<int> max_connection_uses;
  /// Idle connections kept across all endpoints (Go's MaxIdleConns); none = no cap. Each shard
  /// keeps at most its share (this divided by the shards, rounded up): past it, the shard's
  /// least recently given back idle connection, whatever its endpoint, is closed
  /// (`close_reason::idle_cap`). It also bounds the warm minimum. >= 0.
  std::optional<int> max_idle_connections;
  /// Run on a connection before it is reused (taken from the idle stack, given back to a
  /// waiting task, or arrived from another shard; not on a connection opened for its caller);
  /// false, or an exception, closes it and the caller gets another.
  std::function<task<bool>(flow&)> health_check;
  /// Strict mode: before every reuse, ask the kernel whether the peer closed, reset or wrote
  /// (one non-blocking recv(MSG_PEEK) syscall a reuse). Off: the pool relies on what its
  /// standing operations already told it (a watcher on each idle connection, a POLLRDHUP
  /// monitor on each connection), which costs nothing per request but can miss a FIN that
  /// arrives after the shard's last entry into the kernel.
  bool check_on_reuse = false;
  /// Background health checks: an idle connection not handed out (nor checked) for this long
  /// has `health_check` run on it by the pool, each one's turn jittered by up to 10%, at most 4
  /// at once per shard, each bounded by `connect_timeout`; one that fails (or runs out of
  /// time) is closed before a caller sees it. None = off. Needs `health_check`. > 0.
  std::optional<std::chrono::duration<double>> health_check_interval;
  /// A warm minimum (HikariCP's minimumIdle, Envoy's preconnect): on each shard that has used
  /// an endpoint, the pool opens connections in the background, within the limit and paced by
  /// `connect_backoff`, until this many are idle (after evictions, expiry or a burst).
  /// 0 to max_connections_per_endpoint.
  int min_idle_per_endpoint = 0;
  /// TCP keepalive on every pooled socket, set before it connects; none = off. The default
  /// (15 s idle, then 3 probes 5 s apart) finds a silently dead connection in about 30 s, half
  /// the default max_idle_time: Go's net.Dialer also probes after 15 s, but every 15 s and 9
  /// times (2.5 min, past any idle timeout, so only leases gain from it); a pool replaces a
  /// wrongly evicted connection with one connect, while a missed dead one costs a caller its
  /// deadline. The pool needs no timer of its own: the kernel fails the socket, the idle
  /// connection's watcher completes and it is evicted (close_reason::keepalive_timeout).
  std::optional<keepalive_settings> tcp_keepalive = keepalive_settings{};
  /// TCP_USER_TIMEOUT on every pooled socket: a leased connection whose data goes
  /// unacknowledged this long fails the caller's I/O with ETIMEDOUT instead of hanging for the
  /// kernel's ~15 minutes. None = off (as Go and Envoy). 1 ms to INT_MAX ms.
  std::optional<std::chrono::duration<double>> tcp_user_timeout;
  /// An endpoint's memory on a shard (its slab: slots, TLS session, last error) is freed once
  /// it has had no connection, waiter or running `with_connection` there for this long (and
  /// no open circuit breaker or pending connect backoff step, which go with it); the endpoint
  /// leaves the pool's table (`all_stats`, `stats` read zeros) when no shard holds it and no
  /// endpoint_handle of it is held, its totals kept in `pool::totals`, and cached DNS answers
  /// past their TTL that no connection needs are forgotten. A forward proxy talking to many
  /// upstreams then holds memory for the ones it uses. None = kept for the pool's life. > 0.
  std::optional<std::chrono::duration<double>> endpoint_idle_timeout{300.0};
  /// Pacing of opens after failures (see connect_backoff_settings); none = every acquire may
  /// try at once. While an endpoint backs off, one open at a time is tried when its step comes;
  /// an acquire that needs a new connection meanwhile waits for it if `acquire_timeout` allows
  /// (riding out a short outage), else fails at once with the last open's error.
  std::optional<connect_backoff_settings> connect_backoff = connect_backoff_settings{};
  /// Bound on opening a connection (name resolution and TCP connect); none = no bound. > 0.
  std::optional<std::chrono::duration<double>> connect_timeout{10.0};
  /// Bound on waiting for a connection when the endpoint is at its limit or backs off after
  /// failed opens (`errc::acquire_timeout`); none = wait at the limit as long as it takes, and
  /// fail at once while the endpoint backs off. >= 0.
  std::optional<std::chrono::duration<double>> acquire_timeout;
  /// Happy Eyeballs (RFC 8305): a host with several addresses (IPv6 and IPv4 interleaved) is
  /// dialled one address after another this far apart, or at once when an attempt fails, the
  /// earlier attempts going on; the first to connect wins. RFC 8305's 250 ms. 0.01 to 2.
  std::chrono::duration<double> connection_attempt_delay{0.25};
  /// How long resolved addresses of a host name are reused. >= 0.
  std::chrono::duration<double> dns_ttl{300.0};
  /// While a host name has connections, its answer is looked up again when `dns_ttl` passes;
  /// connections to an address missing from two answers in a row are closed (idle ones at
  /// once, leased ones when they come back: `close_reason::address_dropped`). Off: connections
  /// stay until they die or expire, as in Envoy and Go's Transport.
  bool drain_dropped_addresses = true;
  /// Leak detection (HikariCP's leakDetectionThreshold): a lease held longer than this is
  /// reported once, to `on_lease_leak` when set, and counted (`endpoint_stats::leaks`). The
  /// part's one timer finds it (no timer per lease): at its deadline once the timer has seen
  /// the lease, which is within the part's sweep period (at most 1 s) of its start. None =
  /// off. > 0.
  std::optional<std::chrono::duration<double>> leak_threshold;
  /// Called on the shard's thread for a lease held past leak_threshold: its endpoint, how long
  /// it has been held, and when it was handed out. Needs leak_threshold. Must not throw.
  std::function<void(const endpoint&, std::chrono::steady_clock::duration held_for,
                     std::chrono::steady_clock::time_point acquired_at)>
      on_lease_leak;
  /// Called on the shard's thread when a connection is opened, closed (with why), or handed
  /// out again.
  std::function<void(const endpoint&)> on_connection_created;
  std::function<void(const endpoint&, close_reason)> on_connection_closed;
  std::function<void(const endpoint&)> on_connection_reused;

  /// Throws std::invalid_argument naming the first field out of range and its value.
  void validate() const;
};

/// The defaults above, as the seed's `default_config`.
config default_config();

}  // namespace conpool
