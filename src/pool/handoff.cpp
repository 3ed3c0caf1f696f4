// SPDX-License-Identifier: MIT
// A part's side of the hand-offs between shards (see pool_shared.hpp for the hand-offs).
//
// Fairness across shards: each shard serves its own waiters in FIFO order. A release with
// waiters both here and on other shards alternates between a local waiter and another shard;
// the other shards are taken round-robin (per endpoint, from after the last one served). A
// closed connection's budget goes to this shard's waiters first, else to the next waiting
// shard. So a shard with waiters gets at least every other connection released on a shard
// that also has waiters, and every connection released on a shard that has none.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pool_shared.hpp"

namespace conpool::detail {

unsigned pool_core::next_of(endpoint_slab& slab, std::uint64_t shards) noexcept {
  const unsigned n = shared.group.size();
  for (unsigned k = 1; k <= n; ++k) {
    const unsigned j = (slab.next_shard + k) % n;
    if ((shards >> j) & 1U) {
      slab.next_shard = j;
      return j;
    }
  }
  return index;  // not reached: `shards` is not empty
}

bool pool_core::release_across(endpoint_slab& slab, slot* s) noexcept {
  const std::uint64_t others = slab.entry.waiting.load(std::memory_order_relaxed) & ~slab.bit;
  if (slab.waiters_head != nullptr) {
    slab.remote_turn = others != 0 && !slab.remote_turn;
    if (!slab.remote_turn) {
      relend(slab, s);
      return true;
    }
  } else if (others == 0) {
    return false;  // to the idle stack (the turn's end looks again: to_waiting_shard)
  }
  give_away(s, next_of(slab, others));
  return true;
}

bool pool_core::to_waiting_shard(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  // A read-modify-write, not a load: it reads the latest `waiting`, and a shard that starts to
  // wait after it (its own fetch_or) then sees this turn's idle count and asks for it. Either
  // way no connection stays idle here while another shard waits (Dekker, without a fence).
  const std::uint64_t others =
      slab.entry.waiting.fetch_or(0, std::memory_order_acq_rel) & ~slab.bit;
  if (others == 0 || closed) return false;
  give_away(s, next_of(slab, others));
  return true;
}

void pool_core::give_away(slot* s, unsigned to) noexcept {
  endpoint_slab& slab = *s->slab;
  if (s->state == slot_state::idle) {
    idle_out(slab, s);
  } else {  // just given back: idle from now on
    drop(slab.stats.active);
    s->idle_since = loop_now();
  }
  move_to(s, slot_state::leaving);
  s->bound_for = static_cast<std::uint8_t>(to);
  // The socket leaves this shard only once the kernel holds none of its operations here (its
  // watcher's recv, its monitor's poll, and a TLS stream's buffer with them): settle_slot
  // sends it when the last cancel is in.
  if (s->watcher == kernel_op::armed) unwatch(s);
  if (s->monitor == kernel_op::armed) unmonitor(s);
  if (s->owed == 0) sent(s);
}

void pool_core::sent(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  auto* p = new handoff;
  p->kind = handoff_kind::connection;
  p->carry(slab.entry);
  p->flow = std::move(s->flow);
  p->created_at = s->created_at;
  p->expires_at = s->expires_at;
  p->idle_since = s->idle_since;
  p->checked_at = s->checked_at;
  p->use_count = s->use_count;
  p->answer = std::exchange(s->answers_ask, false);
  move_to(s, slot_state::free);
  bump(slab.stats.handoffs);
  vacate(s);  // its connection travels, still within the endpoint's budget
  slab.drained.notify();
  shared.post(p, s->bound_for);
}

void pool_core::adopt(handoff* p) noexcept {
  endpoint_slab& slab = slab_for(p->entry->ep);
  if (p->answer) slab.asking = false;
  slot* s = closed ? nullptr : slab.take_free();  // the budget counted it all along
  if (s == nullptr) {
    // Closed here already, perhaps shut (or no memory for a slot): no ring operation, the
    // socket is closed at once.
    count_close(slab, close_reason::pool_closed);
    (void)::close(p->flow.release());
    delete p;
    slab.entry.budget.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  ++live_;
  s->flow = std::move(p->flow);
  s->created_at = p->created_at;
  s->expires_at = p->expires_at;
  s->checked_at = p->checked_at;
  s->use_count = p->use_count;
  s->peer_gone = false;
  const loop_clock::time_point idle_since = p->idle_since;
  delete p;
  to_idle(s, idle_since);  // still idle since it left the other shard's stack
  if (s->state != slot_state::idle) return;  // max_idle_connections took it (a share of 0)
  arm_monitor(s);
  // Checked on arrival: nothing watched it on the way (the other shard cancelled its
  // operations first), so the kernel is asked once. A dead one frees its budget for a waiter;
  // so does one arriving while close_all_connections drains the slab.
  if (slab.draining > 0) {
    close(s, close_reason::drained);
    return;
  }
  if (!peer_quiet(*s)) {
    close(s, gone_reason(*s));
    return;
  }
  serve_first_waiter(slab);
  // Else its waiter left meanwhile: idle here (and maybe on to another waiting shard).
}

void pool_core::on_ask_idle(handoff* p) noexcept {
  endpoint_slab* slab = closed ? nullptr : find(p->entry->ep);
  slot* s = slab != nullptr ? pop_fit(*slab) : nullptr;
  if (s == nullptr) {
    p->kind = handoff_kind::no_idle;
    shared.post(p, p->from);
    return;
  }
  const unsigned to = p->from;
  delete p;
  s->answers_ask = true;
  give_away(s, to);
}

void pool_core::on_room(handoff* p) noexcept {
  endpoint_slab* slab = find(p->entry->ep);
  if (!closed && slab != nullptr && slab->waiters_head != nullptr) {
    delete p;
    serve_waiters(*slab);
    return;
  }
  // Nobody waits here any more: pass the budget on to a shard that does.
  const std::uint64_t others =
      closed ? 0 : p->entry->waiting.load(std::memory_order_seq_cst) & ~(std::uint64_t{1} << index);
  if (others != 0 && slab != nullptr) {
    shared.post(p, next_of(*slab, others));
  } else {
    delete p;
  }
}

void pool_core::on_handoff(handoff* p) noexcept {
  switch (p->kind) {
    case handoff_kind::connection:
      adopt(p);
      break;
    case handoff_kind::ask_idle:
      on_ask_idle(p);
      break;
    case handoff_kind::no_idle:
      if (endpoint_slab* slab = find(p->entry->ep)) {
        slab->asking = false;
        if (slab->waiters_head != nullptr) ask(*slab);
        note_unused(*slab);
      }
      delete p;
      break;
    case handoff_kind::budget:
      on_room(p);
      break;
    case handoff_kind::close_part:
      delete p;
      begin_close();
      break;
  }
}

void pool_core::answer_no_idle(endpoint_slab& slab, unsigned to) noexcept {
  auto* p = new handoff;
  p->kind = handoff_kind::no_idle;
  p->carry(slab.entry);
  shared.post(p, to);
}

void pool_core::on_wait(endpoint_slab& slab) noexcept {
  if (!multi) return;
  // The waiting bit went up (a full barrier) before this: a connection closed elsewhere since
  // the caller found the budget spent is taken here, else its closer sees the bit.
  serve_waiters(slab);
  if (slab.waiters_head != nullptr) ask(slab);
}

void pool_core::ask(endpoint_slab& slab) noexcept {
  if (slab.asking || closed) return;
  const unsigned n = shared.group.size();
  for (unsigned k = 1; k < n; ++k) {
    const unsigned j = (index + k) % n;
    // Idle there, not counting those in a background check (pop_fit would not find them).
    const shard_stats& there = slab.entry.sides[j];
    if (read(there.idle) <= read(there.probing)) continue;
    auto* p = new handoff;
    p->kind = handoff_kind::ask_idle;
    p->carry(slab.entry);
    p->from = index;
    slab.asking = true;
    shared.post(p, j);
    return;
  }
}

void pool_core::offer_budget(endpoint_slab& slab) noexcept {
  if (closed || slab.waiters_head != nullptr) return;  // ours took it, or tried
  const std::uint64_t others = slab.entry.waiting.load(std::memory_order_seq_cst) & ~slab.bit;
  if (others == 0) return;
  auto* p = new handoff;
  p->kind = handoff_kind::budget;
  p->carry(slab.entry);
  p->from = index;
  shared.post(p, next_of(slab, others));
}

void pool_core::begin_close() noexcept {
  if (closing_) return;
  closing_ = true;
  closed = true;
  fail_waiters();
  background_.cancel();  // checks and warming end soon; their connections close as they do
  for (auto& [ep, slab] : slabs_) close_idle(*slab, close_reason::pool_closed);
  stop_timer();
  report_if_shut();
}

void pool_core::report_if_shut() noexcept {
  if (finished_ || live_ != 0 || outstanding_ != 0 || background_running_ != 0 ||
      background_hook_.queued) {
    return;
  }
  for (const auto& [ep, slab] : slabs_) {
    if (!slab->drained.handles.empty()) return;  // a close_all_connections still winds up
  }
  finished_ = true;
  shard_->drop_turn_hook(&watch_hook_);
  shared.work_done();  // last: the pool may be freed from here on
}

// ---- hand-offs ----------------------------------------------------------------------------------

void handoff::arrived(completion* c, unsigned, int res, unsigned) noexcept {
  auto* p = static_cast<handoff*>(c);
  if (res < 0) {  // it never left: still ours
    shard_core::current().repost(p->to, p, res);
    return;
  }
  pool_shared& pool = *p->pool;
  const bool here = pool.part_at(p->to) != nullptr;
  if (!here && p->kind == handoff_kind::ask_idle) {
    p->kind = handoff_kind::no_idle;  // no part here: nothing idle
    pool.post(p, p->from);
  } else if (!here && p->kind == handoff_kind::no_idle) {
    delete p;
  } else {
    pool.part().on_handoff(p);  // a connection, budget or close_part: makes the part if none
  }
  pool.work_done();
}

}  // namespace conpool::detail
