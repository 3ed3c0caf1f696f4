// SPDX-License-Identifier: MIT
#pragma once
/// `endpoint_handle`: an endpoint interned by a pool, for callers that use the same endpoints
/// again and again (a proxy's upstreams).
///
/// `pool::handle(ep)` makes it once (checking the endpoint as `acquire` does). It is a counted
/// pointer: compared by identity, copied with two atomic increments (pass it by reference where
/// you can), and `acquire`, `with_connection`, `stats` and `last_error` take it. Through a
/// handle the hit path hashes nothing, compares no string, allocates nothing and counts
/// nothing: the endpoint's slab on the calling shard is one load away.
///
/// While a handle is held its endpoint stays in the pool's table (its stats kept, never
/// reclaimed by `config::endpoint_idle_timeout`); its slabs on the shards still go when they
/// are unused, and come back on the next acquire; the last handle dropped lets the endpoint go
/// (from any thread). A handle may outlive its pool: destroy it on a shard of the pool, or
/// once the pool's shards have stopped (not on another thread while the pool is being
/// destroyed); using it after the pool is gone is an error. Used with another pool it is
/// refused (std::invalid_argument).
///
/// Example:
///   const endpoint_handle redis = p.handle(endpoint{"127.0.0.1", 6379});
///   result<connection> c = co_await p.acquire(redis);

#include <conpool/endpoint.hpp>

namespace conpool {

namespace detail {
struct endpoint_entry;
struct handle_access;
}  // namespace detail

class endpoint_handle {
 public:
  /// No endpoint (`pool::handle` makes real ones).
  endpoint_handle() noexcept = default;
  endpoint_handle(const endpoint_handle& o) noexcept;
  endpoint_handle(endpoint_handle&& o) noexcept : entry_(o.entry_) { o.entry_ = nullptr; }
  endpoint_handle& operator=(const endpoint_handle& o) noexcept;
  endpoint_handle& operator=(endpoint_handle&& o) noexcept;
  ~endpoint_handle();

  /// The endpoint it stands for.
  [[nodiscard]] const conpool::endpoint& endpoint() const noexcept;
  /// False for a default-made handle.
  explicit operator bool() const noexcept { return entry_ != nullptr; }

  friend bool operator==(const endpoint_handle& a, const endpoint_handle& b) noexcept {
    return a.entry_ == b.entry_;
  }

 private:
  friend struct detail::handle_access;
  // Adopts one use and one hold of `e` (pool::handle takes them).
  explicit endpoint_handle(detail::endpoint_entry* e) noexcept : entry_(e) {}
  void reset() noexcept;
  detail::endpoint_entry* entry_ = nullptr;
};

}  // namespace conpool
