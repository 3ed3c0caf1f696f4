// SPDX-License-Identifier: MIT
#pragma once
// Opening a connection in a slot (resolve, connect with the config's socket options, TLS), for
// a caller (`open`) or for the idle stack (`open_idle`: warm_endpoint, the warm minimum).

#include <system_error>

#include <conpool/connection.hpp>
#include <conpool/error.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

struct slot;

/// A new connection in the opening slot `s`, lent to the caller.
task<result<connection>> open(slot* s);
/// A new connection in the opening slot `s`, parked idle; the error when it failed.
task<std::error_code> open_idle(slot* s);

}  // namespace conpool::detail
