// SPDX-License-Identifier: MIT
#pragma once
// Happy Eyeballs (RFC 8305): connecting to a host with several addresses without waiting on a
// dead one. The addresses are interleaved by family (the first family getaddrinfo's RFC 6724
// order gave, then the other, alternating); an attempt starts, and the next one starts
// `attempt_delay` later, or at once when an attempt fails, while the earlier ones go on; the
// first to connect wins and the others are cancelled (their sockets closed). Each attempt is
// bounded by what is left of the open's time limit (its connect's linked timeout).

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include <conpool/address.hpp>
#include <conpool/flow.hpp>
#include <conpool/io.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

/// An open's time limit: `connect_timeout` from its start, or none.
struct time_limit {
  std::optional<std::chrono::steady_clock::time_point> until;

  /// connect_timeout `d` (none: no limit) from now.
  static time_limit after(std::optional<std::chrono::nanoseconds> d) {
    if (!d) return {};
    return {std::chrono::steady_clock::now() + *d};
  }
  /// What is left (zero once it passed), or none.
  [[nodiscard]] op_timeout left() const {
    if (!until) return std::nullopt;
    return std::max(std::chrono::nanoseconds::zero(),
                    std::chrono::duration_cast<std::chrono::nanoseconds>(
                        *until - std::chrono::steady_clock::now()));
  }
};

/// The addresses in the order the race tries them.
std::vector<socket_address> interleave_families(const std::vector<socket_address>& addresses);

/// The first of `addresses` to connect (each with `options`, each bounded by what is left of
/// `limit`). Errors: the last attempt's failure (errc::connect_timeout when the limit cut it);
/// operation_canceled.
task<result<flow>> connect_first(std::vector<socket_address> addresses,
                                 const socket_options& options,
                                 std::chrono::nanoseconds attempt_delay, time_limit limit);

}  // namespace conpool::detail
