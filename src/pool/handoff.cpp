// SPDX-License-Identifier: MIT
// A part's side of the hand-offs between shards (see pool_shared.hpp for the parcels).
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
      hand_out(s, true);
      grant(slab, s);
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
  slab.unlink_idle(s);
  give_away(s, next_of(slab, others));
  return true;
}

void pool_core::give_away(slot* s, unsigned to) noexcept {
  s->state = slot_state::leaving;
  s->watch_queued = false;
  s->bound_for = static_cast<std::uint8_t>(to);
  // The watcher's recv must be out of the kernel before the socket (and a TLS stream's
  // buffer) leaves this shard: slot_cqe sends it once the cancel is in.
  if (s->watching && !s->unwatching) unwatch(s);
  if (s->pending == 0) send(s);
}

void pool_core::send(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  auto* p = new parcel;
  p->kind = parcel_kind::gift;
  p->entry = &slab.entry;
  p->flow = std::move(s->flow);
  p->created_at = s->created_at;
  p->last_used = s->last_used;
  p->use_count = s->use_count;
  p->answer = std::exchange(s->answering, false);
  vacate(s);  // its connection travels, still within the endpoint's budget
  slab.drained.notify();
  shared.post(p, s->bound_for);
}

void pool_core::adopt(parcel* p) noexcept {
  endpoint_slab& slab = slab_for(p->entry->ep);
  if (p->answer) slab.asking = false;
  if (closed) {
    // Closed here already, perhaps quiet: no ring operation, the socket is closed at once.
    bump(slab.stats.total_closed);
    (void)::close(p->flow.release());
    delete p;
    slab.entry.budget.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  slot* s = slab.take_free();  // the budget counted it all along
  ++live_;
  s->flow = std::move(p->flow);
  s->created_at = p->created_at;
  s->last_used = p->last_used;
  s->use_count = p->use_count;
  delete p;
  if (slab.waiters_head != nullptr) {
    hand_out(s, true);
    grant(slab, s);
    if (slab.waiters_head != nullptr) ask(slab);  // more waiting: another idle one, if any
  } else {  // its waiter left meanwhile: idle here (and maybe on to another waiting shard)
    s->state = slot_state::idle;
    slab.push_idle(s);
    watch_at_turn_end(s);
    arm_sweeper();
  }
}

void pool_core::on_want(parcel* p) noexcept {
  endpoint_slab* slab = closed ? nullptr : find(p->entry->ep);
  slot* s = slab != nullptr ? reuse_idle(*slab) : nullptr;
  if (s == nullptr) {
    p->kind = parcel_kind::none;
    shared.post(p, p->from);
    return;
  }
  const unsigned to = p->from;
  delete p;
  s->answering = true;
  give_away(s, to);
}

void pool_core::on_room(parcel* p) noexcept {
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

void pool_core::arrive(parcel* p) noexcept {
  switch (p->kind) {
    case parcel_kind::gift:
      adopt(p);
      break;
    case parcel_kind::want:
      on_want(p);
      break;
    case parcel_kind::none:
      if (endpoint_slab* slab = find(p->entry->ep)) {
        slab->asking = false;
        if (slab->waiters_head != nullptr) ask(*slab);
      }
      delete p;
      break;
    case parcel_kind::room:
      on_room(p);
      break;
    case parcel_kind::close:
      delete p;
      begin_close();
      break;
  }
}

void pool_core::answer_none(endpoint_slab& slab, unsigned to) noexcept {
  auto* p = new parcel;
  p->kind = parcel_kind::none;
  p->entry = &slab.entry;
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
    if (read(slab.entry.sides[j].idle) == 0) continue;
    auto* p = new parcel;
    p->kind = parcel_kind::want;
    p->entry = &slab.entry;
    p->from = index;
    slab.asking = true;
    shared.post(p, j);
    return;
  }
}

void pool_core::budget_freed(endpoint_slab& slab) noexcept {
  if (closed || slab.waiters_head != nullptr) return;  // ours took it, or tried
  const std::uint64_t others = slab.entry.waiting.load(std::memory_order_seq_cst) & ~slab.bit;
  if (others == 0) return;
  auto* p = new parcel;
  p->kind = parcel_kind::room;
  p->entry = &slab.entry;
  p->from = index;
  shared.post(p, next_of(slab, others));
}

void pool_core::begin_close() noexcept {
  if (closing_) return;
  closing_ = true;
  closed = true;
  fail_waiters();
  for (auto& [ep, slab] : slabs_) {
    while (slab->idle_top != nullptr) close(slab->idle_top, false);
  }
  if (sweeper_.armed && !sweeper_.removing) {
    sweeper_.removing = true;
    io_uring_sqe* sqe = shard_->sqe();
    io_uring_prep_timeout_remove(sqe, user_data(&sweeper_, role_main), 0);
    io_uring_sqe_set_data64(sqe, user_data(&sweeper_, role_cancel));
    ++outstanding_;
    shard_->expect(1);
  }
  maybe_quiet();
}

void pool_core::maybe_quiet() noexcept {
  if (finished_ || live_ != 0 || outstanding_ != 0) return;
  for (const auto& [ep, slab] : slabs_) {
    if (!slab->drained.handles.empty()) return;  // a close_all_connections still winds up
  }
  finished_ = true;
  shard_->drop_turn_hook(&watch_hook_);
  shared.work_done();  // last: the pool may be freed from here on
}

// ---- parcels ------------------------------------------------------------------------------------

void parcel::arrived(completion* c, unsigned, int res, unsigned) noexcept {
  auto* p = static_cast<parcel*>(c);
  if (res < 0) {
    // It never left (the target's CQ was full): still ours, try again.
    if (res == -EOVERFLOW || res == -EAGAIN || res == -EBUSY) {
      shard_core::current().post(p->to, p);
      return;
    }
    std::fprintf(stderr, "conpool: a post to shard %u failed: %s\n", p->to, std::strerror(-res));
    std::abort();
  }
  pool_shared& pool = *p->pool;
  const bool here = pool.part_at(p->to) != nullptr;
  if (!here && p->kind == parcel_kind::want) {
    p->kind = parcel_kind::none;  // no part here: nothing idle
    pool.post(p, p->from);
  } else if (!here && p->kind == parcel_kind::none) {
    delete p;
  } else {
    pool.part().arrive(p);  // a gift, room or close makes the part if this shard had none
  }
  pool.work_done();
}

}  // namespace conpool::detail
