// SPDX-License-Identifier: MIT
#pragma once
// The pool's TLS connections: the handshake when one opens (offering the endpoint's last
// session), and the idle watcher's bytes, which for TLS are records to run through wolfSSL
// (a NewSessionTicket must not evict a healthy connection). Without TLS in the build these are
// never reached (TLS endpoints are refused before any I/O).

#include <cstddef>
#include <span>

#include <conpool/error.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

class endpoint_slab;

enum class tls_watch { quiet, spoke, closed };

/// The TLS handshake on a just-connected `f` for `slab`'s endpoint; remembers the session.
task<result<void>> tls_open(flow& f, endpoint_slab& slab);
/// Where the watcher of a TLS connection receives.
std::span<std::byte> tls_watch_buffer(flow& f) noexcept;
/// The watcher received `n` bytes; `judge` when the connection is idle (else they are only
/// kept, in order, for the lease's reads).
tls_watch tls_absorb(flow& f, std::size_t n, bool judge) noexcept;
/// Keeps `f`'s session for the endpoint's next connection (tickets may come after the
/// handshake).
void tls_remember(endpoint_slab& slab, flow& f) noexcept;
/// The bytes of a close_notify (and anything unsent before it) for the pool to send ahead of
/// closing `f`'s socket; they stay valid until the slot is reused.
std::span<const std::byte> tls_close_notify(flow& f) noexcept;
/// Frees the endpoint's kept session.
void tls_forget(endpoint_slab& slab) noexcept;

}  // namespace conpool::detail
