// SPDX-License-Identifier: MIT
#pragma once
// The pool on one shard: per endpoint a slab of fixed connection slots, an idle stack (LIFO),
// a free list and a FIFO of waiters; idle watchers; one sweep timer for idle and lifetime expiry.
// Everything here is touched only by the shard's thread.

#include <linux/time_types.h>

#include <chrono>
#include <coroutine>
#include <cstring>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <conpool/config.hpp>
#include <conpool/detail/cancel_node.hpp>
#include <conpool/detail/io_op.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/flow.hpp>
#include <conpool/stats.hpp>

#include "resolver.hpp"
#include "tls_glue.hpp"
#include "shard_core.hpp"

namespace conpool::detail {

using loop_clock = std::chrono::steady_clock;

class endpoint_slab;
class pool_core;

/// The hit path's key check: cheap fields first, then the host's bytes in 8-byte loads (hosts are
/// short; a libc memcmp call costs more than the compare).
inline bool same_endpoint(const endpoint& a, const endpoint& b) noexcept {
  const std::size_t n = a.host.size();
  if (a.port != b.port || n != b.host.size() || a.tls.has_value() != b.tls.has_value()) {
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
  return !a.tls || *a.tls == *b.tls;
}

enum class slot_state : std::uint8_t { free, opening, idle, active, closing };

// One connection's place. Its completion serves three SQEs, told apart by role: the idle
// watcher (a zero-length recv), the watcher's cancel, and the IORING_OP_CLOSE.
struct slot : completion {
  static constexpr unsigned watch = role_main;
  static constexpr unsigned close = role_link;
  static constexpr unsigned unwatch = role_cancel;

  endpoint_slab* slab = nullptr;
  conpool::flow flow;
  loop_clock::time_point created_at{};
  loop_clock::time_point last_used{};  // last release (or creation)
  std::uint32_t use_count = 0;         // times handed out
  slot_state state = slot_state::free;
  std::uint8_t pending = 0;  // CQEs owed to this slot
  bool watching = false;     // the watcher is in the kernel
  bool unwatching = false;   // its cancel is in flight
  bool peer_event = false;   // the watcher fired while the connection was out
  bool watch_queued = false; // idle, its watcher to be armed at the end of the turn
  slot* prev = nullptr;      // idle stack links; `next` also links the free list
  slot* next = nullptr;
};

// A task waiting for a connection of an endpoint at its limit (lives in its frame).
struct slot_waiter : cancel_hook {
  endpoint_slab* slab = nullptr;
  std::coroutine_handle<> handle;
  cancel_node* node = nullptr;
  slot* granted = nullptr;  // an idle connection (active now) or a slot to open (opening)
  bool cancelled = false;
  bool pool_closed = false;
  slot_waiter* prev = nullptr;
  slot_waiter* next = nullptr;
};

// Tasks waiting for a slab (or the pool) to drain; re-check their condition when woken.
struct drain_waiters {
  std::vector<std::coroutine_handle<>> handles;
  void notify() noexcept;
};

enum class breaker_state : std::uint8_t { closed, open, half_open };

class endpoint_slab {
 public:
  endpoint_slab(pool_core& core, endpoint ep, int capacity);
  ~endpoint_slab();
  endpoint_slab(const endpoint_slab&) = delete;
  endpoint_slab& operator=(const endpoint_slab&) = delete;

  pool_core& core;
  const endpoint ep;
  const int capacity;
  std::unique_ptr<slot[]> slots;
  slot* free_head = nullptr;
  slot* idle_top = nullptr;  // most recently released: reused first
  std::uint32_t in_use = 0;  // slots not free (opening, idle, active, closing)
  slot_waiter* waiters_head = nullptr;
  slot_waiter* waiters_tail = nullptr;
  drain_waiters drained;
  int draining = 0;  // close_all_connections in progress: releases close
  endpoint_stats stats;
  void* tls_session = nullptr;  // WOLFSSL_SESSION*: the last session, offered on a new connection
  std::string last_error;       // the last failed open, in words (pool::last_error)

  // Circuit breaker (with_circuit_breaker).
  breaker_state breaker = breaker_state::closed;
  int consecutive_failures = 0;
  int failure_threshold = 1;
  std::uint32_t breaker_generation = 0;  // bumped when it opens: older results are stale
  loop_clock::time_point opened_at{};
  bool trial_in_flight = false;

  slot* take_free() noexcept;
  void put_free(slot* s) noexcept;
  void push_idle(slot* s) noexcept {
    s->prev = nullptr;
    s->next = idle_top;
    if (idle_top != nullptr) idle_top->prev = s;
    idle_top = s;
    ++stats.idle;
  }
  void unlink_idle(slot* s) noexcept {
    (s->prev != nullptr ? s->prev->next : idle_top) = s->next;
    if (s->next != nullptr) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    --stats.idle;
  }
  void add_waiter(slot_waiter* w) noexcept;
  void remove_waiter(slot_waiter* w) noexcept;
  slot_waiter* pop_waiter() noexcept;
  [[nodiscard]] bool settled() const noexcept { return stats.active == 0 && in_use == stats.idle; }
};

class pool_core {
 public:
  explicit pool_core(config c);
  ~pool_core();
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  const config cfg;
  bool closed = false;
  resolver names;

  /// The slab of `ep`, made on first use. Throws std::invalid_argument for a bad endpoint.
  endpoint_slab& slab_for(const endpoint& ep) {
    if (last_key_ != nullptr && same_endpoint(*last_key_, ep)) [[likely]]
      return *last_slab_;
    return slab_lookup(ep);
  }
  [[nodiscard]] endpoint_slab* find(const endpoint& ep) const noexcept;
  [[nodiscard]] const auto& slabs() const noexcept { return slabs_; }

  /// The hit path: the warmest healthy idle connection, handed out; nullptr if none (expired
  /// ones met on the way are closed).
  slot* reuse_idle(endpoint_slab& slab) noexcept {
    const auto now = loop_now();
    while (slot* s = slab.idle_top) {
      if (!expired(*s, now)) [[likely]] {
        slab.unlink_idle(s);
        return s;
      }
      close(s, false);
    }
    return nullptr;
  }
  /// Marks `s` (idle, or just opened) as handed out.
  void hand_out(slot* s, bool reused) noexcept {
    s->state = slot_state::active;
    ++s->use_count;
    s->peer_event = false;
    endpoint_slab& slab = *s->slab;
    ++slab.stats.active;
    if (reused) {
      ++slab.stats.total_reused;
      if (cfg.on_connection_reused) cfg.on_connection_reused(slab.ep);
    }
    // A watcher whose cancel is already in flight needs nothing more.
    if (s->watching && !s->unwatching) unwatch(s);
  }
  /// Back from a lease: to the first waiter, else the idle stack (closed if its watcher fired,
  /// or it is expired, or the pool is closing).
  void release(slot* s) noexcept {
    endpoint_slab& slab = *s->slab;
    const auto now = loop_now();
    s->last_used = now;
    // A TLS server's tickets follow its handshake, so they are in by the end of the first
    // lease; later ones reach the idle watcher, which keeps them too.
    if (s->use_count == 1 && s->flow.is_tls()) [[unlikely]] tls_remember(slab, s->flow);
    if (closed || slab.draining > 0 || s->peer_event || expired(*s, now)) [[unlikely]] {
      close(s, false);
      return;
    }
    --slab.stats.active;
    if (slab.waiters_head != nullptr) {
      // Straight to the longest waiter: it stays handed out, as a reuse.
      hand_out(s, true);
      grant(slab, s);
      return;
    }
    s->state = slot_state::idle;
    slab.push_idle(s);
    // A watcher whose cancel is still in flight re-arms when that completes (slot_cqe).
    if (!s->watching) watch_at_turn_end(s);
    if (!sweeper_.armed) arm_sweeper();
  }
  /// Closes the connection of `s` (idle or active): cancel its watcher, IORING_OP_CLOSE; the
  /// slot is free once every CQE is in.
  void close(slot* s, bool after_error) noexcept;
  /// An opening slot whose connection failed (`counted`: as an error, not a cancel): free again.
  void open_failed(slot* s, bool counted) noexcept;
  /// An opening slot got its connection.
  void opened(slot* s, conpool::flow f) noexcept;
  /// A just-opened connection goes straight to the idle stack (warm_endpoint: not a use).
  void park_idle(slot* s) noexcept;
  /// Gives free slots to waiters, as many as can be served (after a drain ends).
  void serve_waiters(endpoint_slab& slab) noexcept;
  /// Slots opening or tasks waiting on the pool: it cannot be destroyed now.
  [[nodiscard]] std::string busy() const;
  /// Idle connections past their idle time or lifetime are closed.
  void sweep() noexcept;
  /// Wakes the waiters of every slab with pool_closed.
  void fail_waiters() noexcept;
  /// Past its lifetime or idle time, or used up. Integer compares only (the hit path).
  [[nodiscard]] bool expired(const slot& s, loop_clock::time_point now) const noexcept {
    return now - s.created_at > lifetime_ || now - s.last_used > idle_limit_ ||
           s.use_count >= max_uses_;
  }

  /// Where every slot's CQEs go.
  static void on_cqe(completion* c, unsigned role, int res, unsigned flags) noexcept;

 private:
  endpoint_slab& slab_lookup(const endpoint& ep);
  void arm_watcher(slot* s) noexcept;
  // Idle watchers are armed once the turn's tasks have run, just before the ring is entered:
  // a connection released and taken again in the same turn (a busy proxy's common case) then
  // costs no watcher and no cancel, and the kernel sees the same thing it would otherwise.
  void watch_at_turn_end(slot* s) {
    if (s->watch_queued) return;
    s->watch_queued = true;
    to_watch_.push_back(s);
    shard_->at_turn_end(&watch_hook_);
  }
  static void arm_queued_watchers(shard_core::turn_hook* h) noexcept;
  void unwatch(slot* s) noexcept;
  void slot_cqe(slot* s, unsigned role, int res) noexcept;
  void freed(slot* s) noexcept;
  void grant(endpoint_slab& slab, slot* s) noexcept;
  void arm_sweeper() noexcept;
  static void on_sweep(completion* c, unsigned role, int res, unsigned flags) noexcept;
  void settle() noexcept;

  // The config's limits in the loop clock's own units, computed once.
  loop_clock::duration lifetime_;
  loop_clock::duration idle_limit_;
  std::uint32_t max_uses_;
  std::unordered_map<endpoint, std::unique_ptr<endpoint_slab>> slabs_;
  // Single-entry cache of the last slab looked up: a proxy talks to a few upstreams in bursts.
  const endpoint* last_key_ = nullptr;
  endpoint_slab* last_slab_ = nullptr;

  struct sweeper : completion {
    pool_core* core = nullptr;
    __kernel_timespec interval{};
    bool armed = false;
    bool removing = false;
  } sweeper_;
  std::uint64_t outstanding_ = 0;  // CQEs owed to this pool (slots and sweeper)
  shard_core* shard_ = &shard_core::current();
  struct watch_hook : shard_core::turn_hook {
    pool_core* core = nullptr;
  } watch_hook_;
  std::vector<slot*> to_watch_;
  friend struct pool_access;
};

}  // namespace conpool::detail
