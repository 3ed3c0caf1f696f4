// SPDX-License-Identifier: MIT
#pragma once
// Name resolution that never blocks a shard, and never lets one name hold up another: numeric
// hosts are parsed at once; names are looked up by getaddrinfo on a small pool of helper
// threads (up to 8, started as lookups need them: a name whose DNS server is silent holds one
// helper, not every lookup behind it), whose answer comes back to the asking shard as an
// IORING_OP_MSG_RING completion. Concurrent lookups of one host on a shard are one lookup
// (a flight that every asking task joins); answers are cached per shard for the pool's dns_ttl.
// An answer past its TTL is kept until the next answer replaces it. An address missing from two
// refreshed answers in a row is reported (`on_dropped`), so that the pool drains its
// connections: once is not enough, as DNS servers that rotate a subset of many addresses
// (Route 53 multivalue, CDNs) leave some out of any one answer. A failed refresh keeps the old
// answer and is tried again after min(dns_ttl, 5 s).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <conpool/address.hpp>
#include <conpool/error.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

class resolver {
 public:
  explicit resolver(std::chrono::duration<double> ttl) : ttl_(ttl) {}
  /// Lookups still out are left to their answers, which free them.
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Every address of `host` with `port`, IPv4 and IPv6, in getaddrinfo's order.
  /// Errors: errc::resolve_failed, operation_canceled (the lookup goes on for the others).
  task<result<std::vector<socket_address>>> resolve(std::string host, std::uint16_t port);

  /// The answer when it needs no lookup (a numeric host, or a cached name): then `resolve`
  /// would complete at once, and the caller can skip bounding it.
  [[nodiscard]] std::optional<std::vector<socket_address>> answer_now(const std::string& host,
                                                                      std::uint16_t port);

  /// True when `host` (a name) has no answer or one past its TTL, and no lookup out: the caller
  /// may refresh it (`resolve`, whose answer is then compared with the old one). False when
  /// answers are not cached (dns_ttl 0).
  [[nodiscard]] bool stale(const std::string& host) const;

  /// Told, when addresses of `host` were missing from two refreshed answers in a row, which
  /// (port 0). Called on the shard, from the answer's completion.
  std::function<void(const std::string& host, const std::vector<socket_address>& gone)>
      on_dropped;

  /// Drops the answers past their TTL of hosts `in_use` says no connection here needs any more
  /// (so that memory follows the names a pool uses; a later acquire looks them up again).
  void forget_expired(const std::function<bool(const std::string& host)>& in_use);
  /// Names cached now.
  [[nodiscard]] std::size_t cached() const noexcept { return cache_.size(); }

  /// Lookups handed to the helpers so far (one per flight).
  [[nodiscard]] std::uint64_t lookups() const noexcept { return lookups_; }

  struct flight;  // one lookup in progress (resolver.cpp)
  /// A flight's answer arrived: cached, and every task waiting on it woken.
  void landed(flight* f) noexcept;

 private:
  struct entry {
    std::vector<socket_address> addresses;  // port 0
    std::vector<socket_address> missing;    // left out of the last answer, not yet reported
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::duration<double> ttl_;
  std::unordered_map<std::string, entry> cache_;
  std::unordered_map<std::string, flight*> flights_;
  std::uint64_t lookups_ = 0;
};

}  // namespace conpool::detail
