// SPDX-License-Identifier: MIT
#pragma once
/// `connection`: a lease on one pooled connection, from `pool::acquire`.
///
/// Give it back with `pool::release` (healthy, clean state), `pool::validate_and_release`, or
/// `pool::close`. A lease dropped without either is closed: its state is unknown.
/// A lease must not outlive its pool and is used on the pool's shard.
///
/// Example:
///   result<connection> c = co_await p.acquire(ep);
///   co_await c->flow().write_all("PING\r\n");
///   p.release(std::move(*c));

#include <chrono>
#include <cstdint>
#include <utility>

#include <conpool/endpoint.hpp>
#include <conpool/flow.hpp>

namespace conpool {

namespace detail {
struct slot;
struct lease_access;
/// Closes the connection of a lease dropped without release or close.
void close_abandoned(slot* s) noexcept;
}  // namespace detail

class connection {
 public:
  /// No connection.
  connection() noexcept = default;
  // Inline: a lease moves and dies on every acquire/release, and these are one test each.
  connection(connection&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  connection& operator=(connection&& other) noexcept {
    if (this != &other) {
      if (slot_ != nullptr) detail::close_abandoned(slot_);
      slot_ = std::exchange(other.slot_, nullptr);
    }
    return *this;
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  /// Closes the connection if it was neither released nor closed.
  ~connection() {
    if (slot_ != nullptr) detail::close_abandoned(slot_);
  }

  /// The byte stream. Valid while the lease is held.
  [[nodiscard]] conpool::flow& flow() const noexcept;
  /// The endpoint it is connected to.
  [[nodiscard]] const conpool::endpoint& endpoint() const noexcept;
  /// Times it has been handed out, this lease included.
  [[nodiscard]] std::uint32_t use_count() const noexcept;
  /// When it was opened (the shard's loop clock).
  [[nodiscard]] std::chrono::steady_clock::time_point created_at() const noexcept;
  /// True when the connection was handed out before this lease (Go's GotConnInfo.Reused): a
  /// server may have closed it meanwhile, which is what `stale_retry` is for.
  [[nodiscard]] bool reused() const noexcept;
  /// How long it sat idle in the pool before this lease (0 for a new one; Go's
  /// GotConnInfo.IdleTime).
  [[nodiscard]] std::chrono::steady_clock::duration idle_for() const noexcept;
  /// True while the lease holds a connection.
  [[nodiscard]] explicit operator bool() const noexcept { return slot_ != nullptr; }

 private:
  friend class pool;
  friend struct detail::lease_access;
  explicit connection(detail::slot* s) noexcept : slot_(s) {}
  detail::slot* slot_ = nullptr;
};

}  // namespace conpool
