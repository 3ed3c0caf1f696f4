// SPDX-License-Identifier: MIT
// A connection's life in its slot: opening -> active <-> idle -> closing -> free.
#include "pool_shared.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace conpool::detail {

void drain_waiters::notify() noexcept {
  for (std::coroutine_handle<> h : handles) shard_core::current().schedule(h);
  handles.clear();
}

// ---- endpoint_slab: free list, idle stack, waiters --------------------------------------------

endpoint_slab::endpoint_slab(pool_core& c, endpoint e, int cap, endpoint_entry& shared,
                             unsigned shard)
    : core(c),
      ep(std::move(e)),
      capacity(cap),
      slots(new slot[static_cast<std::size_t>(cap)]),
      entry(shared),
      stats(shared.sides[shard]),
      bit(c.multi ? std::uint64_t{1} << shard : 0) {
  for (int i = cap - 1; i >= 0; --i) {
    slot& s = slots[static_cast<std::size_t>(i)];
    s.on_cqe = &pool_core::on_cqe;
    s.slab = this;
    put_free(&s);
  }
}

endpoint_slab::~endpoint_slab() { tls_forget(*this); }

slot* endpoint_slab::take_free() noexcept {
  slot* s = free_head;
  if (s != nullptr) {
    free_head = s->next;
    s->next = nullptr;
    ++in_use;
  }
  return s;
}

void endpoint_slab::put_free(slot* s) noexcept {
  s->next = free_head;
  free_head = s;
}

void endpoint_slab::add_waiter(slot_waiter* w) noexcept {
  // The other shards learn that this one waits (a full barrier: see pool_core::on_wait).
  if (waiters_head == nullptr && bit != 0) entry.waiting.fetch_or(bit, std::memory_order_seq_cst);
  w->next = nullptr;
  w->prev = waiters_tail;
  (waiters_tail != nullptr ? waiters_tail->next : waiters_head) = w;
  waiters_tail = w;
}

void endpoint_slab::remove_waiter(slot_waiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : waiters_head) = w->next;
  (w->next != nullptr ? w->next->prev : waiters_tail) = w->prev;
  w->prev = w->next = nullptr;
  if (waiters_head == nullptr && bit != 0) entry.waiting.fetch_and(~bit, std::memory_order_seq_cst);
}

slot_waiter* endpoint_slab::pop_waiter() noexcept {
  slot_waiter* w = waiters_head;
  if (w != nullptr) remove_waiter(w);
  return w;
}

// ---- pool_core ---------------------------------------------------------------------------------

pool_core::pool_core(pool_shared& sh, unsigned i)
    : shared(sh),
      cfg(sh.cfg),
      index(i),
      multi(sh.group.size() > 1),
      checks_health(static_cast<bool>(sh.cfg.health_check)),
      closed(sh.closing()),
      names(cfg.dns_ttl),
      lifetime_(std::chrono::duration_cast<loop_clock::duration>(cfg.max_connection_lifetime)),
      idle_limit_(std::chrono::duration_cast<loop_clock::duration>(cfg.max_idle_time)),
      max_uses_(cfg.max_connection_uses ? static_cast<std::uint32_t>(*cfg.max_connection_uses)
                                        : UINT32_MAX) {
  sweeper_.on_cqe = &pool_core::on_sweep;
  watch_hook_.run = &pool_core::arm_queued_watchers;
  watch_hook_.core = this;
  sweeper_.core = this;
  // Idle and lifetime expiry share one timer per pool, not one per connection: a sweep every
  // quarter of the shorter limit (1 ms to 1 s) closes what expired; the hit path also checks.
  const double period =
      std::min(cfg.max_idle_time.count(), cfg.max_connection_lifetime.count()) / 4;
  to_kernel_timespec(std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::duration<double>(std::clamp(period, 0.001, 1.0))),
                     sweeper_.interval);
}

std::string pool_core::busy() const {
  for (const auto& [ep, slab] : slabs_) {
    std::uint64_t opening = 0;
    for (int i = 0; i < slab->capacity; ++i) {
      if (slab->slots[static_cast<std::size_t>(i)].state == slot_state::opening) ++opening;
    }
    const std::uint64_t active = read(slab->stats.active);
    if (active != 0 || opening != 0 || !slab->drained.handles.empty()) {
      return std::to_string(active) + " leased, " + std::to_string(opening) +
             " opening, " + std::to_string(slab->drained.handles.size()) +
             " task(s) closing connections of " + ep.to_string();
    }
  }
  return {};
}

pool_core::~pool_core() {
  if (!finished_) shut_now();
}

void pool_core::shut_now() noexcept {
  // Tasks still inside the pool would resume into freed memory: a bug in the caller, stopped
  // here loudly (close_pool() waits for all of them).
  if (std::string why = busy(); !why.empty()) {
    std::fprintf(stderr, "conpool: pool destroyed while in use: %s\n", why.c_str());
    std::abort();
  }
  if (t_current_core != shard_) {
    std::fprintf(stderr,
                 "conpool: pool destroyed while shard %u still uses it; co_await close_pool() "
                 "first\n",
                 index);
    std::abort();
  }
  closed = true;
  fail_waiters();
  for (auto& [ep, slab] : slabs_) {
    while (slab->idle_top != nullptr) close(slab->idle_top, false);
  }
  shard_->drop_turn_hook(&watch_hook_);
  settle();
  finished_ = true;
}

endpoint_slab& pool_core::slab_lookup(const endpoint& ep) {
  auto it = slabs_.find(ep);
  if (it == slabs_.end()) {
    if (std::string why = ep.problem(); !why.empty())
      throw std::invalid_argument("conpool: " + why);
    auto slab = std::make_unique<endpoint_slab>(*this, ep, cfg.max_connections_per_endpoint,
                                                shared.table.intern(ep), index);
    it = slabs_.emplace(ep, std::move(slab)).first;
  }
  last_key_ = &it->first;
  last_slab_ = it->second.get();
  return *last_slab_;
}

endpoint_slab* pool_core::find(const endpoint& ep) const noexcept {
  auto it = slabs_.find(ep);
  return it == slabs_.end() ? nullptr : it->second.get();
}

void pool_core::close(slot* s, bool after_error) noexcept {
  endpoint_slab& slab = *s->slab;
  if (s->state == slot_state::closing || s->state == slot_state::free) return;
  if (s->state == slot_state::idle) {
    slab.unlink_idle(s);
  } else if (s->state == slot_state::active) {
    drop(slab.stats.active);
  }
  s->state = slot_state::closing;
  s->watch_queued = false;
  bump(slab.stats.total_closed);
  if (after_error) bump(slab.stats.errors);
  if (cfg.on_connection_closed) cfg.on_connection_closed(slab.ep);
  unwatch(s);
  shard_core& shard = shard_core::current();
  io_uring_sqe* sqe = nullptr;
  if (s->flow.is_tls()) {
    // TLS says goodbye first: close_notify, hard-linked so that the close runs whatever the
    // send's fate, and MSG_DONTWAIT so that a full socket never holds the close back.
    const std::span<const std::byte> bye = tls_close_notify(s->flow);
    if (!bye.empty()) {
      sqe = shard.sqe(2);  // both in one submission: a link never spans two
      io_uring_prep_send(sqe, s->flow.native_handle(), bye.data(), bye.size(),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      sqe->flags |= IOSQE_IO_HARDLINK;
      io_uring_sqe_set_data64(sqe, user_data(s, role_aux));
      ++s->pending;
      ++outstanding_;
      shard.expect(1);
    }
  }
  sqe = shard.sqe();
  io_uring_prep_close(sqe, s->flow.release());
  io_uring_sqe_set_data64(sqe, user_data(s, static_cast<sqe_role>(slot::close)));
  ++s->pending;
  ++outstanding_;
  shard.expect(1);
}

void pool_core::opened(slot* s, conpool::flow f) noexcept {
  s->flow = std::move(f);
  s->created_at = s->last_used = loop_now();
  s->use_count = 0;
  endpoint_slab& slab = *s->slab;
  bump(slab.stats.total_created);
  if (cfg.on_connection_created) cfg.on_connection_created(slab.ep);
}

void pool_core::open_failed(slot* s, bool counted) noexcept {
  if (counted) bump(s->slab->stats.errors);
  freed(s);  // gives the slot back and lets the next waiter open one
}

void pool_core::arm_queued_watchers(shard_core::turn_hook* h) noexcept {
  pool_core& core = *static_cast<watch_hook*>(h)->core;
  for (slot* s : core.to_watch_) {
    if (!s->watch_queued) continue;  // closed meanwhile (or already armed)
    s->watch_queued = false;
    if (s->state != slot_state::idle || s->watching) continue;
    if (core.multi && core.to_waiting_shard(s)) continue;
    core.arm_watcher(s);
  }
  core.to_watch_.clear();
}

void pool_core::arm_watcher(slot* s) noexcept {
  shard_core& shard = shard_core::current();
  io_uring_sqe* sqe = shard.sqe();
  if (s->flow.is_tls()) {
    // TLS: what arrives are records (tickets, alerts) that wolfSSL must see; slot_cqe judges.
    const std::span<std::byte> buf = tls_watch_buffer(s->flow);
    io_uring_prep_recv(sqe, s->flow.native_handle(), buf.data(), buf.size(), 0);
  } else {
    // A zero-length recv: stays pending while the connection is quiet; completes when the
    // server sends bytes (0), closes (0) or resets (-ECONNRESET). It consumes nothing.
    io_uring_prep_recv(sqe, s->flow.native_handle(), nullptr, 0, 0);
  }
  io_uring_sqe_set_data64(sqe, user_data(s, static_cast<sqe_role>(slot::watch)));
  s->watching = true;
  ++s->pending;
  ++outstanding_;
  shard.expect(1);
}

void pool_core::unwatch(slot* s) noexcept {
  if (!s->watching || s->unwatching) return;
  shard_core& shard = shard_core::current();
  io_uring_sqe* sqe = shard.sqe();
  io_uring_prep_cancel64(sqe, user_data(s, static_cast<sqe_role>(slot::watch)), 0);
  io_uring_sqe_set_data64(sqe, user_data(s, static_cast<sqe_role>(slot::unwatch)));
  s->unwatching = true;
  ++s->pending;
  ++outstanding_;
  shard.expect(1);
}

void pool_core::on_cqe(completion* c, unsigned role, int res, unsigned) noexcept {
  auto* s = static_cast<slot*>(c);
  s->slab->core.slot_cqe(s, role, res);
}

void pool_core::slot_cqe(slot* s, unsigned role, int res) noexcept {
  --s->pending;
  --outstanding_;
  if (role == slot::watch) {
    s->watching = false;
    s->unwatching = false;
    // A TLS watcher's bytes belong to the stream. Idle, they are judged: post-handshake
    // records only (a NewSessionTicket) keep the connection; out on a lease, they wait there
    // for the lease's reads, in order.
    if (res > 0 && s->flow.is_tls() && s->state != slot_state::closing) {
      const bool idle = s->state == slot_state::idle;
      const tls_watch v = tls_absorb(s->flow, static_cast<std::size_t>(res), idle);
      if (idle && v == tls_watch::quiet) {
        tls_remember(*s->slab, s->flow);
        arm_watcher(s);
      } else if (idle) {
        close(s, false);
      }
    } else if (res != -ECANCELED) {
      // -ECANCELED: our own cancel (or a user's); anything else is the server speaking up:
      // bytes, FIN or RST on a connection nobody asked it to use.
      if (s->state == slot_state::idle) {
        close(s, false);
      } else if (s->state == slot_state::active) {
        s->peer_event = true;  // too late for this lease: evicted when it comes back
      } else if (s->state == slot_state::leaving) {
        // The server spoke up on its way out: it goes nowhere, and an asker hears so.
        if (std::exchange(s->answering, false)) answer_none(*s->slab, s->bound_for);
        close(s, false);
      }
    } else if (s->state == slot_state::idle) {
      watch_at_turn_end(s);  // released while its cancel was in flight
    }
  }
  if (s->pending != 0) return;
  if (s->state == slot_state::closing) {
    freed(s);
  } else if (s->state == slot_state::leaving) {
    send(s);
  }
  if (closing_) maybe_quiet();  // last: once quiet, the part may be freed
}

slot* pool_core::take_new(endpoint_slab& slab) noexcept {
  // The budget is the limit across shards; this shard's free slots always cover it.
  std::atomic<int>& budget = slab.entry.budget;
  int used = budget.load(std::memory_order_relaxed);
  do {
    if (used >= cfg.max_connections_per_endpoint) return nullptr;
  } while (!budget.compare_exchange_weak(used, used + 1, std::memory_order_seq_cst));
  ++live_;
  return slab.take_free();
}

void pool_core::vacate(slot* s) noexcept {
  s->state = slot_state::free;
  s->use_count = 0;
  s->peer_event = false;
  --s->slab->in_use;
  --live_;
  s->slab->put_free(s);
}

void pool_core::freed(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  s->flow = conpool::flow();  // its socket is closed; this frees a TLS session's memory
  vacate(s);
  slab.entry.budget.fetch_sub(1, std::memory_order_seq_cst);
  serve_waiters(slab);
  if (multi) budget_freed(slab);
  slab.drained.notify();
}

void pool_core::serve_waiters(endpoint_slab& slab) noexcept {
  // While a close_all_connections drains the slab, nothing new opens: waiters wait for its end.
  if (closed || slab.draining > 0) return;
  while (slab.waiters_head != nullptr) {
    slot* fresh = take_new(slab);
    if (fresh == nullptr) return;
    fresh->state = slot_state::opening;
    grant(slab, fresh);  // the longest waiter opens a connection in it
  }
}

void pool_core::park_idle(slot* s) noexcept {
  s->state = slot_state::idle;
  s->slab->push_idle(s);
  watch_at_turn_end(s);
  arm_sweeper();
}

void pool_core::grant(endpoint_slab& slab, slot* s) noexcept {
  slot_waiter* w = slab.pop_waiter();
  w->granted = s;
  if (w->node != nullptr) w->node->unpark(w);
  shard_core::current().schedule(w->handle);
}

void pool_core::fail_waiters() noexcept {
  for (auto& [ep, slab] : slabs_) {
    while (slot_waiter* w = slab->pop_waiter()) {
      w->pool_closed = true;
      if (w->node != nullptr) w->node->unpark(w);
      shard_core::current().schedule(w->handle);
    }
  }
}

void pool_core::sweep() noexcept {
  const auto now = loop_now();
  for (auto& [ep, slab] : slabs_) {
    for (slot* s = slab->idle_top; s != nullptr;) {
      slot* next = s->next;
      if (expired(*s, now)) close(s, false);
      s = next;
    }
  }
}

void pool_core::arm_sweeper() noexcept {
  if (sweeper_.armed) return;
  shard_core& shard = shard_core::current();
  io_uring_sqe* sqe = shard.sqe();
  io_uring_prep_timeout(sqe, &sweeper_.interval, 0, 0);
  io_uring_sqe_set_data64(sqe, user_data(&sweeper_, role_main));
  sweeper_.armed = true;
  ++outstanding_;
  shard.expect(1);
}

void pool_core::on_sweep(completion* c, unsigned role, int res, unsigned) noexcept {
  pool_core& core = *static_cast<sweeper*>(c)->core;
  --core.outstanding_;
  if (role == role_main) {  // not the remove's own CQE
    core.sweeper_.armed = false;
    if (res == -ETIME && !core.sweeper_.removing && !core.closed) {
      core.sweep();
      for (auto& [ep, slab] : core.slabs_) {
        if (slab->idle_top != nullptr) {
          core.arm_sweeper();
          break;
        }
      }
    }
  }
  if (core.closing_) core.maybe_quiet();  // last: once quiet, the part may be freed
}

void pool_core::settle() noexcept {
  shard_core& shard = shard_core::current();
  if (sweeper_.armed) {
    sweeper_.removing = true;
    io_uring_sqe* sqe = shard.sqe();
    io_uring_prep_timeout_remove(sqe, user_data(&sweeper_, role_main), 0);
    io_uring_sqe_set_data64(sqe, user_data(&sweeper_, role_cancel));
    ++outstanding_;
    shard.expect(1);
  }
  // Slots and the sweeper live in this object: wait here until the kernel owes them nothing.
  shard.settle(outstanding_);
}

}  // namespace conpool::detail
