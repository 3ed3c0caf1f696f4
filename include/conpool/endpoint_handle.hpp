// SPDX-License-Identifier: MIT
#pragma once
/// `endpoint_handle`: an endpoint interned by a pool, for callers that use the same endpoints
/// again and again (a proxy's upstreams).
///
/// `pool::handle(ep)` makes it once (checking the endpoint as `acquire` does). It is a pointer:
/// cheap to copy, compared by identity, and `acquire`, `with_connection`, `stats` and
/// `last_error` take it. Through a handle the hit path hashes nothing, compares no string and
/// allocates nothing: the endpoint's slab on the calling shard is one load away. A handle is
/// valid while its pool is; used with another pool it is refused (std::invalid_argument).
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

  /// The endpoint it stands for.
  [[nodiscard]] const conpool::endpoint& endpoint() const noexcept;
  /// False for a default-made handle.
  explicit operator bool() const noexcept { return entry_ != nullptr; }

  friend bool operator==(const endpoint_handle&, const endpoint_handle&) = default;

 private:
  friend struct detail::handle_access;
  explicit endpoint_handle(detail::endpoint_entry* e) noexcept : entry_(e) {}
  detail::endpoint_entry* entry_ = nullptr;
};

}  // namespace conpool
