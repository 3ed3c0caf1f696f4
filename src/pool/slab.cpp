// SPDX-License-Identifier: MIT
// An endpoint's slab on one shard: its free list, idle stack and waiters.
#include "pool_shared.hpp"

#include <algorithm>
#include <new>

namespace conpool::detail {

void drain_waiters::notify() noexcept {
  for (std::coroutine_handle<> h : handles) shard_core::current().schedule(h);
  handles.clear();
}

// ---- endpoint_slab: free list, idle stack, waiters --------------------------------------------

endpoint_slab::endpoint_slab(pool_core& c, int cap, endpoint_entry& shared, unsigned shard)
    : core(c),
      stats(shared.sides[shard]),
      entry(shared),
      bit(c.multi ? std::uint64_t{1} << shard : 0),
      ep(shared.ep),
      capacity(cap) {}

endpoint_slab::~endpoint_slab() { tls_forget(*this); }

bool endpoint_slab::grow() noexcept {
  if (made_ >= capacity) return false;
  const int size = std::min({made_ == 0 ? 2 : std::max(4, made_ / 2), 1024, capacity - made_});
  chunk c;
  c.slots.reset(new (std::nothrow) slot[static_cast<std::size_t>(size)]);
  if (c.slots == nullptr) return false;
  c.size = size;
  try {
    chunks_.push_back(std::move(c));
  } catch (...) {
    return false;
  }
  slot* slots = chunks_.back().slots.get();
  for (int i = size - 1; i >= 0; --i) {  // the chunk's first slot is taken first
    slot& s = slots[i];
    s.on_cqe = &pool_core::on_slot_cqe;
    s.monitor_op.on_cqe = &pool_core::on_monitor_cqe;
    s.monitor_op.owner = &s;
    s.slab = this;
    put_free(&s);
  }
  made_ += size;
  return true;
}

slot* endpoint_slab::take_free() noexcept {
  if (free_head == nullptr && !grow()) return nullptr;
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
  bump(stats.waiting);
}

void endpoint_slab::remove_waiter(slot_waiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : waiters_head) = w->next;
  (w->next != nullptr ? w->next->prev : waiters_tail) = w->prev;
  w->prev = w->next = nullptr;
  drop(stats.waiting);
  if (waiters_head == nullptr && bit != 0) entry.waiting.fetch_and(~bit, std::memory_order_seq_cst);
}

slot_waiter* endpoint_slab::pop_waiter() noexcept {
  slot_waiter* w = waiters_head;
  if (w != nullptr) remove_waiter(w);
  return w;
}

}  // namespace conpool::detail
