// SPDX-License-Identifier: MIT
#pragma once
// A pool's connections of one endpoint on one shard: a slab of fixed slots, an idle stack (LIFO),
// a free list and a FIFO of waiters. Touched only by the shard's thread (the entry it points at
// is shared: see endpoint_table.hpp). The lists change only in pool_core's transitions.

#include <linux/time_types.h>

#include <chrono>
#include <coroutine>
#include <cstring>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <conpool/config.hpp>
#include <conpool/detail/cancel_node.hpp>
#include <conpool/detail/io_op.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/flow.hpp>
#include <conpool/stats.hpp>

#include "endpoint_table.hpp"
#include "resolver.hpp"
#include "tls_glue.hpp"
#include "shard_core.hpp"
#include "slot.hpp"

namespace conpool::detail {

class pool_core;
class pool_shared;
struct handoff;

/// The hit path's key check, on every part of the identity (host, port, TLS, proxy): cheap
/// fields first, then the host's bytes in 8-byte loads (hosts are short; a libc memcmp call
/// costs more than the compare).
inline bool same_endpoint(const endpoint& a, const endpoint& b) noexcept {
  const std::size_t n = a.host.size();
  if (a.port != b.port || n != b.host.size() || a.tls.has_value() != b.tls.has_value() ||
      a.proxy.has_value() != b.proxy.has_value()) {
    return false;
  }
  const char* x = a.host.data();
  const char* y = b.host.data();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t u;
    std::uint64_t v;
    std::memcpy(&u, x + i, 8);
    std::memcpy(&v, y + i, 8);
    if (u != v) return false;
  }
  for (; i < n; ++i) {
    if (x[i] != y[i]) return false;
  }
  return (!a.tls || *a.tls == *b.tls) && (!a.proxy || *a.proxy == *b.proxy);
}

// Tasks waiting for a slab (or the pool) to drain; re-check their condition when woken.
struct drain_waiters {
  std::vector<std::coroutine_handle<>> handles;
  void notify() noexcept;
};

enum class breaker_state : std::uint8_t { closed, open, half_open };

class alignas(64) endpoint_slab {
 public:
  endpoint_slab(pool_core& core, int capacity, endpoint_entry& entry, unsigned shard);
  ~endpoint_slab();
  endpoint_slab(const endpoint_slab&) = delete;
  endpoint_slab& operator=(const endpoint_slab&) = delete;

  // The hit path's line: read on every acquire and release (the idle stack written).
  pool_core& core;
  slot* idle_top = nullptr;  // most recently released: reused first
  slot_waiter* waiters_head = nullptr;
  shard_stats& stats;     // this shard's line of the entry's stats
  endpoint_entry& entry;  // shared by the pool's shards: budget, waiting shards, stats
  std::uint64_t bit = 0;  // this shard's bit in entry.waiting (0 in a pool of one shard)
  int draining = 0;       // close_all_connections in progress: releases close
  std::uint32_t in_use = 0;   // slots not free
  bool watch_queued = false;  // idle slots wait for their watchers at the turn's end
  bool asking = false;        // an ask_idle is out

  const endpoint& ep;  // the entry's
  const int capacity;  // the per-endpoint limit: the most slots it ever holds
  slot* free_head = nullptr;
  std::uint32_t pins = 0;    // with_connection calls running on it (it is not reclaimed)
  loop_clock::time_point unused_since{};  // when it last had nothing (see `unused`); {}: in use
  slot_waiter* waiters_tail = nullptr;
  drain_waiters drained;
  // Across shards (0 / false in a pool of one shard).
  unsigned next_shard = 0;   // round-robin cursor over the other shards
  bool remote_turn = false;  // with waiters here and elsewhere, releases alternate
  void* tls_session = nullptr;  // WOLFSSL_SESSION*: the last session, offered on a new connection
  std::string last_error;       // the last failed open, in words (pool::last_error)

  // Connect backoff (config::connect_backoff) and the warm minimum.
  std::uint32_t open_failures = 0;  // failed opens in a row (opens in flight together: one)
  std::uint32_t open_epoch = 0;     // bumped by each counted failure and by a success
  loop_clock::time_point next_open_at{};  // while backing off: no open before this
  bool trial_open = false;          // while backing off: the one open allowed is out
  std::error_code last_open_error;  // what the last failed open gave
  std::uint32_t warming = 0;        // opens for the idle stack in flight (warm minimum)

  // Circuit breaker (with_circuit_breaker).
  breaker_state breaker = breaker_state::closed;
  int consecutive_failures = 0;
  int failure_threshold = 1;
  std::uint32_t breaker_generation = 0;  // bumped when it opens: older results are stale
  loop_clock::time_point opened_at{};
  bool trial_in_flight = false;

  /// A free slot, the slab grown by a chunk when none is free and fewer than `capacity`
  /// exist; nullptr at the limit (or when memory for a chunk is refused).
  slot* take_free() noexcept;
  void put_free(slot* s) noexcept;
  /// Calls `f(slot&)` for every slot made so far (free ones included).
  template <class F>
  void for_each_slot(F&& f) {
    for (const chunk& c : chunks_) {
      for (int i = 0; i < c.size; ++i) f(c.slots[static_cast<std::size_t>(i)]);
    }
  }
  template <class F>
  void for_each_slot(F&& f) const {
    for (const chunk& c : chunks_) {
      for (int i = 0; i < c.size; ++i) f(std::as_const(c.slots[static_cast<std::size_t>(i)]));
    }
  }
  /// Slots made so far (memory follows the connections the slab has held at once).
  [[nodiscard]] int slots_made() const noexcept { return made_; }
  void push_idle(slot* s) noexcept {
    s->prev = nullptr;
    s->next = idle_top;
    if (idle_top != nullptr) idle_top->prev = s;
    idle_top = s;
    bump(stats.idle);
  }
  void unlink_idle(slot* s) noexcept {
    (s->prev != nullptr ? s->prev->next : idle_top) = s->next;
    if (s->next != nullptr) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    drop(stats.idle);
  }
  void add_waiter(slot_waiter* w) noexcept;
  void remove_waiter(slot_waiter* w) noexcept;
  slot_waiter* pop_waiter() noexcept;
  /// Nothing here needs it: no connection, waiter, pin, hand-off or drain in progress, no
  /// watcher queued, no circuit breaker open and no connect backoff step to wait for (that
  /// state would be lost with it). Unused for endpoint_idle_timeout, it is reclaimed.
  [[nodiscard]] bool unused(loop_clock::time_point now) const noexcept {
    return in_use == 0 && pins == 0 && waiters_head == nullptr && !asking && draining == 0 &&
           drained.handles.empty() && !watch_queued && warming == 0 &&
           breaker == breaker_state::closed && (open_failures == 0 || now >= next_open_at);
  }
  [[nodiscard]] bool settled() const noexcept {
    return read(stats.active) == 0 && in_use == read(stats.idle);
  }

 private:
  // Slots come in chunks that never move (a slot's address is its io_uring user_data): the
  // first of 2 (most of a forward proxy's upstreams hold one or two connections), then at
  // least 4 and each half of what exists (growth by 1.5: at least 2/3 of the slots made were
  // in use at once), at most 1,024, never past `capacity`.
  struct chunk {
    std::unique_ptr<slot[]> slots;
    int size = 0;
  };
  bool grow() noexcept;
  std::vector<chunk> chunks_;
  int made_ = 0;
};

}  // namespace conpool::detail
