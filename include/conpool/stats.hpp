// SPDX-License-Identifier: MIT
#pragma once
/// `endpoint_stats`: what the pool has done for one endpoint.
///
/// At every quiescent point (no connection being opened or closed)
/// `total_created == total_closed + active + idle`; `errors` is the sum of `errors_by`, and
/// `total_closed` the sum of `closed_by`.
///
/// Example:
///   std::cout << p.stats(ep);   // active=1 idle=2 created=3 reused=40 closed=0 errors=0

#include <array>
#include <cstdint>
#include <iosfwd>

#include <conpool/close_reason.hpp>
#include <conpool/error_kind.hpp>

namespace conpool {

struct endpoint_stats {
  std::uint64_t active = 0;         ///< connections handed out now
  std::uint64_t idle = 0;           ///< connections waiting in the pool now
  std::uint64_t total_created = 0;  ///< connections opened
  std::uint64_t total_reused = 0;   ///< leases of a connection that was lent before
  std::uint64_t total_closed = 0;   ///< connections closed (for any reason)
  std::uint64_t errors = 0;         ///< failed opens, and connections closed after an error
  std::uint64_t retries = 0;        ///< callbacks run again after a stale reused connection
  std::uint64_t leaks = 0;          ///< leases held past config::leak_threshold (each once)
  std::uint64_t opening = 0;        ///< connections being opened now (resolve, connect, TLS)
  std::uint64_t waiting = 0;        ///< tasks waiting now for a connection (at the limit)
  std::uint64_t acquire_timeouts = 0;  ///< acquisitions that failed with errc::acquire_timeout
  std::uint64_t handoffs = 0;       ///< connections handed to another shard's waiter
  /// Closes per reason, indexed by `close_reason` (they add up to `total_closed`):
  /// `s.closed_by[std::size_t(close_reason::keepalive_timeout)]`.
  std::array<std::uint64_t, close_reason_count> closed_by{};
  /// Errors per kind, indexed by `error_kind` (they add up to `errors`).
  std::array<std::uint64_t, error_kind_count> errors_by{};

  /// Closes for `r`.
  [[nodiscard]] std::uint64_t closed_for(close_reason r) const noexcept {
    return closed_by[static_cast<std::size_t>(r)];
  }
  /// Errors of kind `k`.
  [[nodiscard]] std::uint64_t errors_for(error_kind k) const noexcept {
    return errors_by[static_cast<std::size_t>(k)];
  }

  /// Adds `o`'s counts to these (stats of several endpoints or pools summed).
  endpoint_stats& operator+=(const endpoint_stats& o) noexcept {
    active += o.active;
    idle += o.idle;
    total_created += o.total_created;
    total_reused += o.total_reused;
    total_closed += o.total_closed;
    errors += o.errors;
    retries += o.retries;
    leaks += o.leaks;
    opening += o.opening;
    waiting += o.waiting;
    acquire_timeouts += o.acquire_timeouts;
    handoffs += o.handoffs;
    for (std::size_t r = 0; r < close_reason_count; ++r) closed_by[r] += o.closed_by[r];
    for (std::size_t k = 0; k < error_kind_count; ++k) errors_by[k] += o.errors_by[k];
    return *this;
  }

  friend bool operator==(const endpoint_stats&, const endpoint_stats&) = default;
};

/// "active=1 idle=2 created=3 reused=40 closed=0 errors=0" (the seed's pp_stats), then, each
/// when not 0, " opening=N", " waiting=N", " retries=N", " leaks=N", " acquire_timeouts=N",
/// " handoffs=N", each reason with closes ("... closed=2 errors=1 peer_closed=2") and each
/// kind of error ("... error.refused=1").
std::ostream& operator<<(std::ostream& os, const endpoint_stats& s);

}  // namespace conpool
