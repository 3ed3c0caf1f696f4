// SPDX-License-Identifier: MIT
#pragma once
/// `close_reason`: why the pool closed a connection (the argument of
/// `config::on_connection_closed`, and a counter per reason in `endpoint_stats::closed_by`).
///
/// Example:
///   c.on_connection_closed = [](const endpoint& ep, close_reason why) {
///     log(ep, to_string(why));   // "127.0.0.1:6379 keepalive_timeout"
///   };

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conpool {

enum class close_reason : std::uint8_t {
  peer_closed,          ///< the server closed it (a FIN; a TLS close_notify)
  peer_reset,           ///< the server reset it, or the socket reported another error
  stray_bytes,          ///< the server wrote on it while nobody had asked (idle or on the way)
  keepalive_timeout,    ///< TCP keepalive probes, or TCP_USER_TIMEOUT, went unanswered
  idle_expired,         ///< idle longer than `max_idle_time`
  lifetime_expired,     ///< older than its lifetime (`max_connection_lifetime`, jittered)
  max_uses,             ///< handed out `max_connection_uses` times
  health_check_failed,  ///< `health_check` said no or threw (on reuse or in the background)
  error_in_use,         ///< its user's operation failed (`with_connection` saw an error)
  closed_by_user,       ///< `pool::close`, or a lease dropped without release or close
  drained,              ///< `close_idle_connections` / `close_all_connections`
  pool_closed,          ///< the pool closed (or was closing when it opened or came back)
  address_dropped,      ///< its host's refreshed DNS answer (after `dns_ttl`) lacks its address
  idle_cap,             ///< the least recently used idle one past `max_idle_connections`
};

/// How many reasons there are (the size of `endpoint_stats::closed_by`).
inline constexpr std::size_t close_reason_count = 14;

/// The reason's name as written above ("peer_reset"): stable, fit for a metric label.
std::string_view to_string(close_reason r) noexcept;

}  // namespace conpool
