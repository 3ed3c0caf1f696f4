// SPDX-License-Identifier: MIT
#pragma once
// A pool's part on one shard: its slabs (one per endpoint), idle watchers, one sweep timer for
// idle and lifetime expiry, and its side of the hand-offs between shards. Touched only by its
// shard's thread; what the shards share is in pool_shared.

#include <linux/time_types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <conpool/config.hpp>

#include "slab.hpp"

namespace conpool::detail {

class pool_core {
 public:
  pool_core(pool_shared& shared, unsigned index);
  /// Quiet (closed, nothing owed by the kernel): only frees memory, on any thread. Otherwise
  /// runs on its own shard and closes every connection now (see shut_now).
  ~pool_core();
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  pool_shared& shared;
  const config& cfg;
  const unsigned index;      // its shard's place in the group
  const bool multi;          // the pool spans more shards than this one
  const bool checks_health;  // cfg.health_check is set (read on the hit path)
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
  /// Marks `s` (idle, just opened, or just arrived from another shard) as handed out.
  void hand_out(slot* s, bool reused) noexcept {
    s->state = slot_state::active;
    ++s->use_count;
    s->peer_event = false;
    endpoint_slab& slab = *s->slab;
    bump(slab.stats.active);
    if (reused) {
      bump(slab.stats.total_reused);
      if (cfg.on_connection_reused) cfg.on_connection_reused(slab.ep);
    }
    // A watcher whose cancel is already in flight needs nothing more.
    if (s->watching && !s->unwatching) unwatch(s);
  }
  /// Back from a lease: to the first waiter (here or on another shard), else the idle stack
  /// (closed if its watcher fired, or it is expired, or the pool is closing).
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
    drop(slab.stats.active);
    if (slab.bit != 0) [[unlikely]] {
      if (release_across(slab, s)) return;
    } else if (slab.waiters_head != nullptr) {
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
  /// A slot for a new connection, within the endpoint's budget across shards; nullptr at the
  /// limit.
  slot* take_new(endpoint_slab& slab) noexcept;
  /// Closes the connection of `s` (idle or active): cancel its watcher, IORING_OP_CLOSE; the
  /// slot is free once every CQE is in.
  void close(slot* s, bool after_error) noexcept;
  /// An opening slot whose connection failed (`counted`: as an error, not a cancel): free again.
  void open_failed(slot* s, bool counted) noexcept;
  /// An opening slot got its connection.
  void opened(slot* s, conpool::flow f) noexcept;
  /// A just-opened connection goes straight to the idle stack (warm_endpoint: not a use).
  void park_idle(slot* s) noexcept;
  /// Gives new slots to waiters, as many as the budget allows.
  void serve_waiters(endpoint_slab& slab) noexcept;
  /// A task joined the slab's waiters: across shards, take a budget freed meanwhile, or ask a
  /// shard holding idle connections for one.
  void on_wait(endpoint_slab& slab) noexcept;
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

  /// A parcel from another shard arrived here.
  void arrive(parcel* p) noexcept;
  /// Closes this part: waiters fail, idle connections close now, leased ones as they come back;
  /// once the kernel owes it nothing it reports to pool_shared (it is then quiet).
  void begin_close() noexcept;
  /// The destructor's way on its own shard: closes every connection and waits for the kernel.
  void shut_now() noexcept;
  [[nodiscard]] bool quiet() const noexcept { return finished_; }
  /// The shard this part lives on.
  [[nodiscard]] const shard_core* home() const noexcept { return shard_; }

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
  // The slot goes back to its slab's free list (its connection closed, or sent to another shard).
  void vacate(slot* s) noexcept;
  void freed(slot* s) noexcept;
  void grant(endpoint_slab& slab, slot* s) noexcept;
  void arm_sweeper() noexcept;
  static void on_sweep(completion* c, unsigned role, int res, unsigned flags) noexcept;
  void settle() noexcept;

  // Across shards (handoff.cpp).
  bool release_across(endpoint_slab& slab, slot* s) noexcept;
  bool to_waiting_shard(slot* s) noexcept;
  void give_away(slot* s, unsigned to) noexcept;
  void send(slot* s) noexcept;
  void adopt(parcel* p) noexcept;
  void on_want(parcel* p) noexcept;
  void answer_none(endpoint_slab& slab, unsigned to) noexcept;
  void on_room(parcel* p) noexcept;
  void ask(endpoint_slab& slab) noexcept;
  unsigned next_of(endpoint_slab& slab, std::uint64_t shards) noexcept;
  void budget_freed(endpoint_slab& slab) noexcept;
  void maybe_quiet() noexcept;

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
  std::uint64_t outstanding_ = 0;  // CQEs owed to this part (slots and sweeper)
  std::uint64_t live_ = 0;         // slots not free, over all slabs
  bool closing_ = false;           // begin_close ran
  bool finished_ = false;          // closed and quiet, reported to pool_shared
  shard_core* shard_ = &shard_core::current();
  struct watch_hook : shard_core::turn_hook {
    pool_core* core = nullptr;
  } watch_hook_;
  std::vector<slot*> to_watch_;
};

}  // namespace conpool::detail
