// SPDX-License-Identifier: MIT
// Opening a connection in a slot: resolve, connect (socket options from the config), TLS,
// under connect_timeout; the slot's transitions record the outcome (and the endpoint's
// connect backoff with it).
#include "opening.hpp"

#include <chrono>
#include <sstream>
#include <vector>

#include <conpool/cancel.hpp>

#include "happy_eyeballs.hpp"
#include "lease_access.hpp"
#include "pool_shared.hpp"
#include "tunnel.hpp"

namespace conpool::detail {

namespace {

std::chrono::nanoseconds to_ns(std::chrono::duration<double> d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d);
}

// `t` bounded by what is left of `limit` (a TIMEOUT SQE of its own); as it is without one.
template <class T>
task<T> within(const time_limit& limit, task<T> t) {
  if (const op_timeout left = limit.left()) co_return co_await with_timeout(*left, std::move(t));
  co_return co_await std::move(t);
}

// Resolves the endpoint (or its proxy) and races its addresses (Happy Eyeballs:
// happy_eyeballs.hpp); the last failure is the one reported. Through a proxy, the tunnel is
// asked for next (tunnel.hpp). TLS endpoints then run the handshake; a TLS failure is the
// server's answer, not an address's, and ends the attempt.
// Every phase is bounded by what is left of `limit`, the open's connect_timeout: a numeric or
// cached host needs no lookup and no timer, and a connect's bound is its own linked timeout, so
// a plain open arms no separate timer at all. `phase` says what it is doing ("resolve",
// "connect", "tunnel", "tls"): a limit that cuts it short names the phase it cut.
task<result<flow>> dial(pool_core& core, endpoint_slab& slab, const time_limit& limit,
                        const char*& phase) {
  const endpoint& ep = slab.ep;
  result<std::vector<socket_address>> addresses;
  if (ep.is_unix()) {
    addresses = std::vector<socket_address>{*socket_address::unix_socket(ep.host)};  // checked
  } else {
    // Through a proxy, the proxy's name is ours to resolve and the endpoint's is the proxy's.
    const std::string& host = ep.proxy ? ep.proxy->host : ep.host;
    const std::uint16_t port = ep.proxy ? ep.proxy->port : ep.port;
    phase = "resolve";
    if (std::optional<std::vector<socket_address>> known = core.names.answer_now(host, port)) {
      addresses = std::move(*known);
    } else {
      addresses = co_await within(limit, core.names.resolve(host, port));
    }
  }
  if (!addresses) {
    if (addresses.error() != errc::timed_out) {
      slab.last_error =
          describe(addresses.error(), ep, ep.proxy ? "resolve proxy " + ep.proxy->host : "resolve");
    }
    co_return fail(addresses.error());
  }
  phase = "connect";
  result<flow> f = co_await connect_first(std::move(*addresses), core.socket_settings(),
                                          to_ns(core.cfg.connection_attempt_delay), limit);
  if (!f) {
    if (f.error() != std::errc::operation_canceled && f.error() != errc::connect_timeout) {
      slab.last_error = describe(f.error(), ep, ep.proxy ? "connect to proxy" : "connect");
    }
    co_return fail(f.error());
  }
  if (ep.proxy) {
    phase = "tunnel";
    std::string why;
    result<void> tunnel = co_await within(limit, open_tunnel(*f, ep, why));
    if (!tunnel) {
      if (!why.empty()) slab.last_error = ep.to_string() + ": tunnel: " + why;
      (void)co_await f->close();
      co_return fail(tunnel.error());
    }
  }
  if (ep.tls) {
    phase = "tls";
    if (result<void> secured = co_await within(limit, tls_open(*f, slab)); !secured) {
      (void)co_await f->close();  // tls_open put wolfSSL's reason in last_error
      co_return fail(secured.error());
    }
  }
  co_return f;
}

task<result<flow>> dial_bounded(slot* s) {
  pool_core& core = s->slab->core;
  const char* phase = "connect";
  const loop_clock::time_point started = loop_now();
  const time_limit limit = time_limit::after(
      core.cfg.connect_timeout ? std::optional(to_ns(*core.cfg.connect_timeout)) : std::nullopt);
  result<flow> f = co_await dial(core, *s->slab, limit, phase);
  if (!f && (f.error() == errc::timed_out || f.error() == errc::connect_timeout)) {
    // The open's limit: the phase it cut is named
    // ("stuck.example:80: resolve: no answer within connect_timeout").
    std::ostringstream why;
    why << s->slab->ep.to_string() << ": " << phase << ": no answer within connect_timeout ("
        << core.cfg.connect_timeout->count() << " s)";
    s->slab->last_error = why.str();
    co_return fail(errc::connect_timeout);
  }
  if (f) core.timings.connect.record(loop_now() - started);
  co_return f;
}

}  // namespace

task<result<connection>> open(slot* s) {
  pool_core& core = s->slab->core;
  result<flow> f;
  try {
    f = co_await dial_bounded(s);
  } catch (...) {
    core.open_failed(s, make_error_code(errc::unhealthy));
    throw;
  }
  if (!f) {
    core.open_failed(s, f.error());
    co_return fail(f.error());
  }
  core.opened(s, std::move(*f));
  if (core.closed) {  // closed while connecting: the connection is not lent
    core.close(s, close_reason::pool_closed);
    co_return fail(errc::pool_closed);
  }
  core.lend_fresh(s);
  co_return lease_access::make(s);
}

task<std::error_code> open_idle(slot* s) {
  pool_core& core = s->slab->core;
  result<flow> f;
  try {
    f = co_await dial_bounded(s);
  } catch (...) {
    core.open_failed(s, make_error_code(errc::unhealthy));  // its place and budget go back
    throw;
  }
  if (!f) {
    core.open_failed(s, f.error());
    co_return f.error();
  }
  core.opened(s, std::move(*f));
  core.park(s);
  co_return std::error_code{};
}

}  // namespace conpool::detail
