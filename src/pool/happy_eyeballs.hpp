// SPDX-License-Identifier: MIT
#pragma once
// Happy Eyeballs (RFC 8305): connecting to a host with several addresses without waiting on a
// dead one. The addresses are interleaved by family (the first family getaddrinfo's RFC 6724
// order gave, then the other, alternating); an attempt starts, and the next one starts
// `attempt_delay` later, or at once when an attempt fails, while the earlier ones go on; the
// first to connect wins and the others are cancelled (their sockets closed). The caller's
// deadline bounds the whole race.

#include <chrono>
#include <vector>

#include <conpool/address.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

/// The addresses in the order the race tries them.
std::vector<socket_address> interleave_families(const std::vector<socket_address>& addresses);

/// The first of `addresses` to connect (each with `options`). Errors: the last attempt's
/// failure; operation_canceled.
task<result<flow>> connect_first(std::vector<socket_address> addresses,
                                 const socket_options& options,
                                 std::chrono::nanoseconds attempt_delay);

}  // namespace conpool::detail
