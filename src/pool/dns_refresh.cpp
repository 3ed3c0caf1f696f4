// SPDX-License-Identifier: MIT
// DNS answers that change under pooled connections: a host whose answer passed its dns_ttl while
// it still has connections is looked up again in the background (on the part's timer); the
// addresses missing from two answers in a row (resolver.hpp says why two) have their
// connections drained: idle ones closed now, leased or moving ones when they come back or
// arrive (close_reason::address_dropped). New opens use the new answer.
// Envoy and Go's Transport keep such connections until they die or expire (envoy#34721,
// go#23427).
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <string_view>
#include <unordered_set>

#include "host_name.hpp"
#include "pool_core.hpp"

namespace conpool::detail {
namespace {

// The name the part resolves for `ep`: the proxy's when it goes through one; empty for a Unix
// socket or an IP literal (nothing to refresh).
const std::string& resolved_name(const endpoint& ep) {
  static const std::string none;
  if (ep.is_unix()) return none;
  const std::string& host = ep.proxy ? ep.proxy->host : ep.host;
  return is_ip_literal(host) ? none : host;
}

// True when the connection's peer is at one of `gone` (any port).
bool peer_in(const slot& s, const std::vector<socket_address>& gone) {
  sockaddr_storage peer{};
  socklen_t size = sizeof peer;
  if (::getpeername(s.flow.native_handle(), reinterpret_cast<sockaddr*>(&peer), &size) != 0) {
    return false;
  }
  return std::any_of(gone.begin(), gone.end(), [&peer](const socket_address& a) {
    if (a.family() != peer.ss_family) return false;
    if (peer.ss_family == AF_INET) {
      return reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr.s_addr ==
             reinterpret_cast<const sockaddr_in&>(peer).sin_addr.s_addr;
    }
    return peer.ss_family == AF_INET6 &&
           std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr,
                       sizeof(in6_addr)) == 0;
  });
}

bool has_connection(slot_state st) noexcept {
  return st == slot_state::idle || st == slot_state::active || st == slot_state::checking ||
         st == slot_state::probing || st == slot_state::leaving;
}

task<void> refresh(resolver& names, std::string host) {
  (void)co_await names.resolve(std::move(host), 0);  // the answer lands in the cache
}

}  // namespace

bool pool_core::refresh_names() {
  if (!cfg.drain_dropped_addresses) return false;
  bool named = false;
  for (auto& [ep, slab] : slabs_) {
    const std::string& host = resolved_name(ep.get());
    if (host.empty() || slab->in_use == 0) continue;
    named = true;
    // A shard whose connections all came from others has no answer yet: it looks one up too.
    if (names.stale(host)) run_background(refresh(names, host));  // stale() is false from here
  }
  return named;
}

void pool_core::forget_names() {
  std::unordered_set<std::string_view> needed;
  for (auto& [ep, slab] : slabs_) {
    if (slab->in_use != 0) needed.insert(resolved_name(ep.get()));
  }
  names.forget_expired([&needed](const std::string& host) { return needed.contains(host); });
}

void pool_core::drain_addresses(const std::string& host, const std::vector<socket_address>& gone) {
  for (auto& [ep, slab] : slabs_) {
    if (resolved_name(ep.get()) != host) continue;
    slab->for_each_slot([&](slot& s) {
      if (has_connection(s.state) && peer_in(s, gone)) {
        // Idle: closed now. Leased, checked or probed: closed when it comes back.
        peer_spoke(&s, static_cast<std::uint8_t>(close_reason::address_dropped));
      }
    });
  }
}

}  // namespace conpool::detail
