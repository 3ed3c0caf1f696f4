// SPDX-License-Identifier: MIT
#pragma once
// A pool's part on one shard: its slabs (one per endpoint), the slots' lives, one sweep timer
// for idle and lifetime expiry, and its side of the hand-offs between shards. Touched only by
// its shard's thread; what the shards share is in pool_shared.
//
// A slot's life. Only the transitions below change a slot's state, its slab's free list and
// idle stack, the active / idle gauges and what the kernel holds of the slot; `move_to` checks
// each step against this table in debug builds.
//
//   from      to         transition        when
//   free      opening    take_new          a task may open a connection (budget taken)
//   free      idle       adopt             a connection came from another shard (checked)
//   free      opening    inherit           a stale connection's place, for its retry (budget kept)
//   opening   free       open_failed       the connect or handshake failed
//   opening   active     lend_fresh        opened for the task that asked
//   opening   idle       park              opened by warm_endpoint
//   opening   closing    close             opened after the pool closed
//   idle      active     lend              the gate let it out (hit path, waiter, ask_idle)
//   idle      checking   lend              the same, to run config::health_check first
//   idle      closing    close             expired, its peer spoke up, or closed on demand
//   idle      leaving    give_away         to a shard that waits for one
//   checking  active     passed            health_check said yes
//   checking  closing    close             health_check said no (or threw)
//   checking  idle       release           its waiter left before the check began
//   checking  leaving    give_away         the same, while another shard waits
//   active    idle       release           given back
//   active    active     relend            given back straight to a waiter here
//   active    checking   relend            the same, to run health_check first
//   active    leaving    give_away         given back while another shard waits
//   active    closing    close             closed by its holder, an error, or found dead
//   idle      probing    probe             its turn for a background health check came
//   probing   idle       probe_passed      the background check said yes (or served a waiter)
//   probing   closing    close             it said no, its peer spoke up, or the pool closed
//   leaving   free       sent              the kernel owes it nothing: its connection travels
//   leaving   closing    close             its peer spoke up on the way out
//   closing   free       finished          the kernel owes it nothing
//
// Every close names a close_reason (counted per endpoint, given to on_connection_closed).
//
// The kernel's side: an idle slot has a watcher (a zero-length recv: FIN, RST or bytes
// complete it), armed when the turn ends and cancelled when the slot is lent; every slot with
// a connection has a monitor (a POLLRDHUP poll) from open to close. Either firing sets
// `peer_gone`: an idle slot closes at once, a leased one when it comes back.
//
// The gate (`pop_fit`, `fit`, `relend`): every route to a lease passes it: the hit path, a
// release to a waiter, a connection arriving from another shard (probed on arrival), a fresh
// open. It first applies what the kernel holds and the shard has not reaped (a flag and a
// count in the rings say so; a syscall only then). It refuses a connection whose peer is known
// to be gone, a worn-out one (lifetime, uses) or an idle one past max_idle_time, and in strict
// mode (config::check_on_reuse) asks the kernel first (one recv(MSG_PEEK | MSG_DONTWAIT)).
// health_check runs in `checking`, on every reuse route.
//
// Background work (its fibers under `background_`, cancelled when the part closes): health
// checks of idle connections (`probing`), the warm minimum (opens parked idle), both driven by
// the part's one timer, which also sweeps expired idle connections and wakes an endpoint whose
// connect backoff step has come. None of it touches the hit path.

#include <linux/time_types.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <conpool/config.hpp>

#include "slab.hpp"
#include "timings.hpp"

namespace conpool::detail {

/// Whether a slot may move from `from` to `to` (the table above).
constexpr bool legal_move(slot_state from, slot_state to) noexcept {
  using enum slot_state;
  switch (from) {
    case free: return to == opening || to == idle;
    case opening: return to == free || to == active || to == idle || to == closing;
    case idle: return to == active || to == checking || to == closing || to == leaving ||
                      to == probing;
    case probing: return to == idle || to == closing;
    case checking: return to == active || to == closing || to == idle || to == leaving;
    case active: return to == idle || to == active || to == checking || to == leaving ||
                        to == closing;
    case leaving: return to == free || to == closing;
    case closing: return to == free;
  }
  return false;
}

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
  const bool strict;         // cfg.check_on_reuse: the kernel is asked at every reuse
  bool closed = false;
  resolver names;
  shard_timings& timings;  // this shard's histograms (pool_shared's)

  /// The slab of `ep`, made on first use. Throws std::invalid_argument for a bad endpoint.
  endpoint_slab& slab_for(const endpoint& ep) {
    if (last_key_ != nullptr && same_endpoint(*last_key_, ep)) [[likely]]
      return *last_slab_;
    return slab_lookup(ep);
  }
  /// The same through a handle's entry: one load once the slab exists.
  endpoint_slab& slab_for(endpoint_entry& e) {
    if (endpoint_slab* s = e.sides[index].slab) [[likely]] return *s;
    return slab_lookup(e.ep);
  }
  [[nodiscard]] endpoint_slab* find(const endpoint& ep) const noexcept;
  [[nodiscard]] const auto& slabs() const noexcept { return slabs_; }

  // ---- the gate ----

  /// The warmest idle connection that passes the gate, off the idle stack and still `idle`
  /// (the caller lends it); nullptr if none. Those that fail are closed on the way.
  slot* pop_fit(endpoint_slab& slab) noexcept {
    // A FIN or RST that reached the kernel during this turn is applied first (a watcher's or
    // monitor's completion the kernel holds): a syscall only when there is such news.
    if (shard_->kernel_has_news()) [[unlikely]] {
      shard_->catch_up();
      if (closed) return nullptr;  // the news was the pool closing
    }
    const auto now = loop_now();
    while (slot* s = slab.idle_top) {
      if (fit(*s, now)) [[likely]] return s;
      close(s, unfit_reason(*s, now));
    }
    return nullptr;
  }
  /// The gate's synchronous part: false when `s` must not be lent (its peer is gone, it is
  /// worn out or, idle, past its idle time, or in strict mode the kernel says it is dead).
  bool fit(slot& s, loop_clock::time_point now) noexcept {
    if (s.peer_gone || worn_out(s, now) || (s.state == slot_state::idle && idle_too_long(s, now)))
        [[unlikely]] {
      return false;
    }
    return !strict || peer_quiet(s);
  }
  /// Lifetime or uses spent (idle time aside). Integer compares only (the hit path).
  [[nodiscard]] bool worn_out(const slot& s, loop_clock::time_point now) const noexcept {
    return now > s.expires_at || s.use_count >= max_uses_;
  }
  /// Why the gate turned `s` away (cold).
  [[nodiscard]] close_reason unfit_reason(slot& s, loop_clock::time_point now) const noexcept;
  /// Why a peer that spoke up made `s` unusable: what the watcher or the probe saw, else the
  /// socket's pending error (SO_ERROR) (cold).
  [[nodiscard]] static close_reason gone_reason(slot& s) noexcept;
  /// Idle past max_idle_time (meaningful for an idle slot only).
  [[nodiscard]] bool idle_too_long(const slot& s, loop_clock::time_point now) const noexcept {
    return now - s.idle_since > idle_limit_;
  }
  /// Asks the kernel: true when nothing waits on the socket (no FIN, RST or stray bytes; a TLS
  /// connection's post-handshake records are run through wolfSSL and keep it). One syscall.
  /// False sets `s.gone_why`.
  bool peer_quiet(slot& s) noexcept;

  // ---- transitions (see the table above) ----

  /// idle -> active (or checking, with a health check): off the stack, its watcher cancelled.
  /// Returns true when it is active. The use is counted when its taker has it (begin_lease).
  bool lend(slot* s) noexcept {
    endpoint_slab& slab = *s->slab;
    idle_out(slab, s);
    // A watcher whose cancel is already in flight needs nothing more.
    if (s->watcher == kernel_op::armed) unwatch(s);
    bump(slab.stats.active);
    if (checks_health) [[unlikely]] {
      move_to(s, slot_state::checking);
      return false;
    }
    move_to(s, slot_state::active);
    return true;
  }
  /// An active slot reaches its taker: one more use; "reused" when it had been lent before.
  void begin_lease(slot* s) noexcept {
    endpoint_slab& slab = *s->slab;
    s->lent_at = loop_now();
    if (s->use_count++ != 0) {
      bump(slab.stats.total_reused);
      if (cfg.on_connection_reused) cfg.on_connection_reused(slab.ep);
    }
  }
  /// A lease ends (given back, closed or dropped by its holder): its hold time is recorded.
  void end_lease(const slot* s) noexcept { timings.lease_hold.record(loop_now() - s->lent_at); }
  /// checking -> active: health_check said yes; its taker has it.
  void passed(slot* s) noexcept {
    move_to(s, slot_state::active);
    begin_lease(s);
  }
  /// opening -> active: a new connection for the task that opened it.
  void lend_fresh(slot* s) noexcept;
  /// opening -> idle: a new connection for warm_endpoint (not a use).
  void park(slot* s) noexcept;
  /// Back from a lease (active, or checking whose waiter left): to the first waiter here or on
  /// another shard, else the idle stack; closed if its peer is gone, it is worn out, or the
  /// pool is closing.
  void release(slot* s) noexcept {
    endpoint_slab& slab = *s->slab;
    const auto now = loop_now();
    // A TLS server's tickets follow its handshake, so they are in by the end of the first
    // lease; later ones reach the idle watcher, which keeps them too.
    if (s->use_count == 1 && s->flow.is_tls()) [[unlikely]] tls_remember(slab, s->flow);
    if (closed || slab.draining > 0 || s->peer_gone || worn_out(*s, now)) [[unlikely]] {
      close(s, release_reason(*s, now));
      return;
    }
    if (slab.bit != 0) [[unlikely]] {
      if (release_across(slab, s)) return;
    } else if (slab.waiters_head != nullptr) {
      relend(slab, s);
      return;
    }
    drop(slab.stats.active);
    to_idle(s, now);
  }
  /// A slot for a new connection (free -> opening), within the endpoint's budget across
  /// shards; nullptr at the limit.
  slot* take_new(endpoint_slab& slab) noexcept;
  /// An opening slot got its connection (still opening): its monitor is armed, its lifetime
  /// drawn (jittered), and the endpoint's connect backoff reset.
  void opened(slot* s, conpool::flow f) noexcept;
  /// opening -> free: the open failed with `error` (counted as an error and a backoff step
  /// unless it was cancelled or the pool closed).
  void open_failed(slot* s, std::error_code error) noexcept;
  /// Closes the connection of `s` (opening, idle, probing, checking, active or leaving) for
  /// `why`: its standing operations are cancelled, IORING_OP_CLOSE; the slot is free once
  /// every CQE is in.
  void close(slot* s, close_reason why) noexcept;
  /// Closes a stale lease for `why`; once the kernel has closed it, its place (and budget) goes
  /// to `heir` as an opening slot (`inherit`), or, when nothing may open now, `heir` resumes
  /// without one (`pool_closed` set if the pool closed).
  void pass_on(slot* s, slot_waiter* heir, close_reason why) noexcept {
    s->heir = heir;
    close(s, why);
  }
  /// A close counted (stats, per reason, the hook) for a connection of `slab`.
  void count_close(endpoint_slab& slab, close_reason why) noexcept;
  /// The options every pooled socket gets before it connects.
  [[nodiscard]] const socket_options& socket_settings() const noexcept { return sockopts_; }

  // ---- connect backoff ----

  /// The endpoint has failed opens in a row: a new open waits for its step.
  [[nodiscard]] static bool backing_off(const endpoint_slab& slab) noexcept {
    return slab.open_failures != 0;
  }
  /// While backing off: whether a caller with `deadline` (none: it cannot wait) may wait for
  /// the endpoint's next open rather than fail now with its last error.
  [[nodiscard]] bool can_wait_for_step(const endpoint_slab& slab,
                                       std::optional<loop_clock::time_point> deadline) const noexcept;
  /// Whether `error` from an open is one the backoff paces (not a cancel, not the pool closing).
  [[nodiscard]] bool paced(std::error_code error) const noexcept;

  /// Gives new slots to waiters, as many as the budget allows.
  void serve_waiters(endpoint_slab& slab) noexcept;
  /// A task joined the slab's waiters: across shards, take a budget freed meanwhile, or ask a
  /// shard holding idle connections for one.
  void on_wait(endpoint_slab& slab) noexcept;
  /// Slots opening or tasks waiting on the pool (and, with `count_background`, background work
  /// running): it cannot be destroyed now.
  [[nodiscard]] std::string busy(bool count_background = true) const;
  /// The part's timer came: idle connections past their idle time or lifetime are closed,
  /// background health checks start, backoff steps and the warm minimum are served; the timer
  /// is armed again for what comes next.
  void tick() noexcept;
  /// Wakes the waiters of every slab with pool_closed.
  void fail_waiters() noexcept;
  /// A waiter with a deadline joined `slab`'s queue: the part's timer comes for it by then
  /// (one timer for every wait: no TIMEOUT and TIMEOUT_REMOVE per wait on the path at the limit).
  void wait_until(loop_clock::time_point deadline) noexcept { wake_at(deadline); }
  /// Takes `w` off its slab's queue and schedules its task (cancelled or timed out).
  static void drop_waiter(slot_waiter* w) noexcept;
  /// Ends the waits past their deadline (timed_out); the earliest deadline left, or max.
  loop_clock::time_point expire_waiters(loop_clock::time_point now) noexcept;
  /// Closes every idle connection of `slab`.
  void close_idle(endpoint_slab& slab, close_reason why) noexcept {
    while (slab.idle_top != nullptr) close(slab.idle_top, why);
  }
  /// Opens connections in the background until `min_idle_per_endpoint` are idle (or opening
  /// for that) on this shard, within the limit and the backoff.
  void top_up(endpoint_slab& slab) noexcept;
  /// Looks up again, in the background, every host whose answer passed dns_ttl while it has
  /// connections here (dns_refresh.cpp). True when some host name has connections here (the
  /// timer comes back for them).
  bool refresh_names();
  /// Forgets cached answers past their TTL of names no connection here needs (dns_refresh.cpp).
  void forget_names();
  /// The resolver's news: `host`'s new answer lacks `gone`; their connections are drained.
  void drain_addresses(const std::string& host, const std::vector<socket_address>& gone);

  /// Reclamation: a slab unused for endpoint_idle_timeout is freed (its entry's use given
  /// back). `note_unused` after it may have become unused (the timer comes for it).
  void note_unused(endpoint_slab& slab) noexcept {
    // The common answer first, without reading the clock: it has connections.
    if (reclaim_after_ == loop_clock::duration::zero() || slab.in_use != 0 || slab.pins != 0) {
      return;
    }
    const auto now = loop_now();
    if (!slab.unused(now)) return;
    slab.unused_since = now;
    wake_at(now + reclaim_after_, true);
  }
  /// A with_connection call holds the slab (see slab_pin) / lets it go.
  static void unpin(endpoint_slab& slab) noexcept {
    if (--slab.pins == 0) slab.core.note_unused(slab);
  }

  /// A handoff from another shard arrived here.
  void on_handoff(handoff* p) noexcept;
  /// Closes this part: waiters fail, idle connections close now, leased ones as they come back;
  /// once the kernel owes it nothing it reports to pool_shared (it is then quiet).
  void begin_close() noexcept;
  /// The destructor's way on its own shard: closes every connection and waits for the kernel.
  void shut_now() noexcept;
  [[nodiscard]] bool shut() const noexcept { return finished_; }
  /// The shard this part lives on.
  [[nodiscard]] const shard_core* home() const noexcept { return shard_; }
  /// Background fibers still running (a lone shard's pool destroyed meanwhile waits for them:
  /// see `orphan`).
  [[nodiscard]] std::uint32_t background_running() const noexcept { return background_running_; }
  /// The pool was destroyed while background fibers ran: they are cancelled, and the last one
  /// to end destroys `owner` (the pool's shared state, this part with it).
  void orphan(std::unique_ptr<pool_shared> owner) noexcept;
  /// Background health checks at once per shard, at most.
  static constexpr std::uint32_t max_probes = 4;

  /// Where a slot's CQEs go, and its monitor's.
  static void on_slot_cqe(completion* c, unsigned role, int res, unsigned flags) noexcept;
  static void on_monitor_cqe(completion* c, unsigned role, int res, unsigned flags) noexcept;

 public:
  /// Onto / off the slab's idle stack, and the shard's idle list when idle connections are
  /// capped (max_idle_connections; otherwise a branch never taken).
  void idle_in(endpoint_slab& slab, slot* s) noexcept {
    slab.push_idle(s);
    if (idle_share_ != no_idle_cap) [[unlikely]] {
      s->older = lru_newest_;
      s->newer = nullptr;
      (lru_newest_ != nullptr ? lru_newest_->newer : lru_oldest_) = s;
      lru_newest_ = s;
      ++idle_here_;
    }
  }
  void idle_out(endpoint_slab& slab, slot* s) noexcept {
    slab.unlink_idle(s);
    if (idle_share_ != no_idle_cap) [[unlikely]] {
      (s->older != nullptr ? s->older->newer : lru_oldest_) = s->newer;
      (s->newer != nullptr ? s->newer->older : lru_newest_) = s->older;
      s->older = s->newer = nullptr;
      --idle_here_;
    }
  }
  /// This shard's idle connections may be no more (the cap's share); false: no cap.
  [[nodiscard]] bool idle_capped() const noexcept { return idle_here_ >= idle_share_; }

 private:
  [[nodiscard]] close_reason release_reason(slot& s, loop_clock::time_point now) const noexcept;
  void move_to(slot* s, slot_state to) noexcept {
    assert(legal_move(s->state, to) && "illegal slot transition");
    s->state = to;
  }
  // -> idle (from active, checking, opening or free): onto the stack; its watcher is armed at
  // the turn's end.
  void to_idle(slot* s, loop_clock::time_point now) noexcept {
    endpoint_slab& slab = *s->slab;
    move_to(s, slot_state::idle);
    s->idle_since = now;
    idle_in(slab, s);
    // max_idle_connections: the oldest goes, unless this one is about to be lent to a waiter
    // here (an arrival from another shard, a warmed or checked one): it will not stay idle.
    if (idle_here_ > idle_share_ && slab.waiters_head == nullptr) [[unlikely]] {
      close(lru_oldest_, close_reason::idle_cap);
      if (s->state != slot_state::idle) return;  // it was the oldest itself (a share of 0)
    }
    if (!slab.watch_queued) queue_watchers(slab);
    // The timer sweeps idle connections: due within a period (a backoff step may have armed it
    // further out while nothing was idle).
    if (!timer_.armed || timer_.due > now + sweep_every_) [[unlikely]] wake_at(now + sweep_every_);
  }
  // active -> active / checking: straight to the longest waiter here, through the gate.
  void relend(endpoint_slab& slab, slot* s) noexcept;
  void grant(endpoint_slab& slab, slot* s) noexcept;
  void sent(slot* s) noexcept;
  void finished(slot* s) noexcept;
  void inherit(endpoint_slab& slab, slot_waiter* heir) noexcept;
  void vacate(slot* s) noexcept;
  // A connection of `slab` is gone for good: its budget goes to a waiter here or elsewhere.
  void give_back_budget(endpoint_slab& slab) noexcept;

  endpoint_slab& slab_lookup(const endpoint& ep);
  // Frees the slabs unused for reclaim_after_; the soonest one still due otherwise.
  loop_clock::time_point reclaim_slabs(loop_clock::time_point now);
  // Reports the leases held past leak_after_ (once each); when to look again (max: none out).
  loop_clock::time_point find_leaks(loop_clock::time_point now);
  void drop_slab(endpoint_slab& slab) noexcept;
  // One SQE for one of `s`'s operations (its completion `c`, in `role`): the slot, the part
  // and the shard each count one more CQE owed. `reserve`: SQEs kept free for a linked one.
  io_uring_sqe* slot_sqe(slot* s, completion* c, unsigned role, unsigned reserve = 1) noexcept;
  // Idle watchers are armed once the turn's tasks have run, just before the ring is entered:
  // a connection released and taken again in the same turn (a busy proxy's common case) then
  // costs no watcher and no cancel, and the kernel sees the same thing it would otherwise.
  void queue_watchers(endpoint_slab& slab);
  static void arm_queued_watchers(shard_core::turn_hook* h) noexcept;
  void arm_watcher(slot* s) noexcept;
  void unwatch(slot* s) noexcept;
  void arm_monitor(slot* s) noexcept;
  void unmonitor(slot* s) noexcept;
  void slot_cqe(slot* s, unsigned role, int res) noexcept;
  void monitor_cqe(slot* s, unsigned role, int res) noexcept;
  void settle_slot(slot* s) noexcept;
  // The peer spoke up (FIN, RST, bytes, a socket error): an idle slot closes now, others when
  // they can. `why` is a close_reason, or error_pending.
  void peer_spoke(slot* s, std::uint8_t why) noexcept;
  void sweep(loop_clock::time_point now) noexcept;
  // The part's one timer (absolute, CLOCK_MONOTONIC): armed for `at`, or moved earlier.
  // `reclaim_only`: nothing but reclamation or a leak check is due then, which wakes no task:
  // it does not keep a loop whose tasks all wait from being reported as deadlocked
  // (shard_core::add_background).
  void wake_at(loop_clock::time_point at, bool reclaim_only = false) noexcept;
  void stop_timer() noexcept;
  static void on_timer(completion* c, unsigned role, int res, unsigned flags) noexcept;
  void wait_for_kernel() noexcept;
  // Connect backoff: a failed open of the current epoch is one more step; any success resets.
  void backoff_failed(endpoint_slab& slab, slot* s, std::error_code error) noexcept;
  void backoff_reset(endpoint_slab& slab) noexcept;
  [[nodiscard]] loop_clock::duration backoff_delay(std::uint32_t failures) noexcept;
  // Background work: fibers under `background_`; the part is not quiet while one runs.
  void run_background(task<void> t);
  static task<void> background_fiber(pool_core& core, task<void> t);
  static void background_ended(shard_core::turn_hook* h) noexcept;
  // idle -> probing, and its background health check.
  void probe(slot* s) noexcept;
  static task<void> probe_fiber(slot* s);
  void probe_done(slot* s, bool healthy) noexcept;
  static task<void> warm_fiber(slot* s);
  // An idle connection for the slab's first waiter, through the gate (after an arrival or a
  // probe); more waiting here then ask other shards.
  void serve_first_waiter(endpoint_slab& slab) noexcept;
  [[nodiscard]] double random_fraction() noexcept;  // [0, 1), xorshift

  // Across shards (handoff.cpp).
  bool release_across(endpoint_slab& slab, slot* s) noexcept;
  bool to_waiting_shard(slot* s) noexcept;
  void give_away(slot* s, unsigned to) noexcept;
  void adopt(handoff* p) noexcept;
  void on_ask_idle(handoff* p) noexcept;
  void answer_no_idle(endpoint_slab& slab, unsigned to) noexcept;
  void on_room(handoff* p) noexcept;
  void ask(endpoint_slab& slab) noexcept;
  unsigned next_of(endpoint_slab& slab, std::uint64_t shards) noexcept;
  void offer_budget(endpoint_slab& slab) noexcept;
  void report_if_shut() noexcept;

  // The config's limits in the loop clock's own units, computed once.
  loop_clock::duration lifetime_;
  loop_clock::duration idle_limit_;
  loop_clock::duration check_every_;  // health_check_interval; zero when off
  loop_clock::duration sweep_every_;  // the timer's period while there are idle connections
  loop_clock::duration reclaim_after_;  // endpoint_idle_timeout; zero when off
  loop_clock::time_point next_names_trim_{};  // reclamation forgets expired names then
  loop_clock::duration leak_after_;  // leak_threshold; zero when off
  std::uint32_t max_uses_;
  socket_options sockopts_;
  // Keyed by the entry's own copy of the endpoint (the entry outlives its slabs): no copy of
  // the endpoint per shard.
  struct key_hash {
    std::size_t operator()(std::reference_wrapper<const endpoint> e) const noexcept {
      return std::hash<endpoint>{}(e.get());
    }
  };
  struct key_equal {
    bool operator()(std::reference_wrapper<const endpoint> a,
                    std::reference_wrapper<const endpoint> b) const noexcept {
      return a.get() == b.get();
    }
  };
  std::unordered_map<std::reference_wrapper<const endpoint>, std::unique_ptr<endpoint_slab>,
                     key_hash, key_equal>
      slabs_;
  // Single-entry cache of the last slab looked up: a proxy talks to a few upstreams in bursts.
  const endpoint* last_key_ = nullptr;
  endpoint_slab* last_slab_ = nullptr;

  struct part_timer : completion {
    pool_core* core = nullptr;
    __kernel_timespec at{};  // the kernel reads it at submission
    loop_clock::time_point due{};
    bool armed = false;
    bool removing = false;
    bool background = false;  // armed for reclamation alone
  } timer_;
  std::uint64_t outstanding_ = 0;  // CQEs owed to this part (slots and timer)
  cancel_node background_;         // a root of its own: the part's background fibers, cancelled
                                   // by begin_close (and orphan), not by the shard's end
  std::uint32_t background_running_ = 0;
  std::uint32_t probes_running_ = 0;
  std::uint64_t random_state_;
  std::uint64_t live_ = 0;         // slots not free, over all slabs
  // max_idle_connections: this shard's share, its idle connections, oldest and newest.
  static constexpr std::uint32_t no_idle_cap = UINT32_MAX;
  std::uint32_t idle_share_ = no_idle_cap;
  std::uint32_t idle_here_ = 0;
  std::uint32_t warming_here_ = 0;  // opens for the warm minimum in flight, all slabs
  slot* lru_oldest_ = nullptr;
  slot* lru_newest_ = nullptr;
  bool closing_ = false;           // begin_close ran
  bool finished_ = false;          // closed and quiet, reported to pool_shared
  shard_core* shard_ = &shard_core::current();
  struct watch_hook : shard_core::turn_hook {
    pool_core* core = nullptr;
  } watch_hook_;
  std::vector<endpoint_slab*> to_watch_;  // slabs with slots that became idle this turn
  std::unique_ptr<pool_shared> orphan_;   // see orphan()
  struct background_hook : shard_core::turn_hook {
    pool_core* core = nullptr;
  } background_hook_;  // the last background fiber ended while closing (or orphaned)
};

}  // namespace conpool::detail
