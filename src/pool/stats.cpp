// SPDX-License-Identifier: MIT
// Stats in words: endpoint_stats printed, the names of close reasons and error kinds, and the
// kind of a failed open's error.
#include <ostream>

#include <conpool/error.hpp>
#include <conpool/stats.hpp>

namespace conpool {

std::ostream& operator<<(std::ostream& os, const endpoint_stats& s) {
  os << "active=" << s.active << " idle=" << s.idle << " created=" << s.total_created
     << " reused=" << s.total_reused << " closed=" << s.total_closed << " errors=" << s.errors;
  const auto more = [&os](const char* name, std::uint64_t n) {
    if (n != 0) os << ' ' << name << '=' << n;
  };
  more("opening", s.opening);
  more("waiting", s.waiting);
  more("retries", s.retries);
  more("leaks", s.leaks);
  more("acquire_timeouts", s.acquire_timeouts);
  more("handoffs", s.handoffs);
  for (std::size_t i = 0; i < close_reason_count; ++i) {
    if (s.closed_by[i] != 0) {
      os << ' ' << to_string(static_cast<close_reason>(i)) << '=' << s.closed_by[i];
    }
  }
  for (std::size_t i = 0; i < error_kind_count; ++i) {
    if (s.errors_by[i] != 0) {
      os << " error." << to_string(static_cast<error_kind>(i)) << '=' << s.errors_by[i];
    }
  }
  return os;
}

std::string_view to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::peer_closed: return "peer_closed";
    case close_reason::peer_reset: return "peer_reset";
    case close_reason::stray_bytes: return "stray_bytes";
    case close_reason::keepalive_timeout: return "keepalive_timeout";
    case close_reason::idle_expired: return "idle_expired";
    case close_reason::lifetime_expired: return "lifetime_expired";
    case close_reason::max_uses: return "max_uses";
    case close_reason::health_check_failed: return "health_check_failed";
    case close_reason::error_in_use: return "error_in_use";
    case close_reason::closed_by_user: return "closed_by_user";
    case close_reason::drained: return "drained";
    case close_reason::pool_closed: return "pool_closed";
    case close_reason::address_dropped: return "address_dropped";
    case close_reason::idle_cap: return "idle_cap";
  }
  return "unknown";
}

std::string_view to_string(error_kind k) noexcept {
  switch (k) {
    case error_kind::refused: return "refused";
    case error_kind::timeout: return "timeout";
    case error_kind::resolve: return "resolve";
    case error_kind::unreachable: return "unreachable";
    case error_kind::reset: return "reset";
    case error_kind::tls_verify: return "tls_verify";
    case error_kind::tls_handshake: return "tls_handshake";
    case error_kind::tunnel: return "tunnel";
    case error_kind::other_open: return "other_open";
    case error_kind::in_use: return "in_use";
  }
  return "unknown";
}

error_kind open_error_kind(std::error_code e) noexcept {
  if (e.category() == error_category()) {
    switch (static_cast<errc>(e.value())) {
      case errc::connect_timeout:
      case errc::timed_out: return error_kind::timeout;
      case errc::resolve_failed: return error_kind::resolve;
      case errc::tls_verify_failed: return error_kind::tls_verify;
      case errc::tls_handshake_failed: return error_kind::tls_handshake;
      case errc::tunnel_failed: return error_kind::tunnel;
      default: return error_kind::other_open;
    }
  }
  if (e == std::errc::connection_refused) return error_kind::refused;
  if (e == std::errc::timed_out) return error_kind::timeout;  // SYNs unanswered (ETIMEDOUT)
  if (e == std::errc::network_unreachable || e == std::errc::host_unreachable ||
      e == std::errc::address_not_available) {
    return error_kind::unreachable;
  }
  if (e == std::errc::connection_reset || e == std::errc::connection_aborted ||
      e == std::errc::broken_pipe) {
    return error_kind::reset;
  }
  return error_kind::other_open;
}

}  // namespace conpool
