// SPDX-License-Identifier: MIT
#pragma once
/// `error_kind`: what sort of failure an endpoint's error was (a counter per kind in
/// `endpoint_stats::errors_by`, a label of the `conpool_errors_total` metric).
///
/// Example:
///   endpoint_stats s = p.stats(ep);
///   if (s.errors_for(error_kind::tls_verify) != 0) alert("certificate of " + ep.to_string());

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace conpool {

enum class error_kind : std::uint8_t {
  refused,        ///< an open was refused (ECONNREFUSED: nothing listens)
  timeout,        ///< an open outlasted `connect_timeout` (errc::connect_timeout)
  resolve,        ///< the host name (or the proxy's) did not resolve (errc::resolve_failed)
  unreachable,    ///< no route to the network or host, or no local address to connect from
  reset,          ///< the connection was reset or aborted while it opened
  tls_verify,     ///< the peer's certificate or name did not verify (errc::tls_verify_failed)
  tls_handshake,  ///< the TLS handshake failed otherwise (errc::tls_handshake_failed)
  tunnel,         ///< the proxy refused the tunnel (errc::tunnel_failed)
  other_open,     ///< an open failed another way (its error in `pool::last_error`)
  in_use,         ///< a lease's user failed (`with_connection` saw an error): close_reason::error_in_use
};

/// How many kinds there are (the size of `endpoint_stats::errors_by`).
inline constexpr std::size_t error_kind_count = 10;

/// The kind's name as written above ("tls_verify"): stable, fit for a metric label.
std::string_view to_string(error_kind k) noexcept;

/// The kind of a failed open's error (never `in_use`).
error_kind open_error_kind(std::error_code e) noexcept;

}  // namespace conpool
