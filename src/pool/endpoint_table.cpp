// SPDX-License-Identifier: MIT
#include "endpoint_table.hpp"

#include "shard_core.hpp"

#include <algorithm>
#include <bit>

namespace conpool::detail {

endpoint_stats endpoint_entry::sum() const noexcept {
  endpoint_stats s;
  for (unsigned i = 0; i < shard_count; ++i) {
    const shard_stats& side = sides[i];
    s.active += read(side.active);
    s.idle += read(side.idle);
    s.total_created += read(side.total_created);
    s.total_reused += read(side.total_reused);
    s.total_closed += read(side.total_closed);
    s.errors += read(side.errors);
    s.retries += read(side.retries);
    s.leaks += read(side.leaks);
    s.opening += read(side.opening);
    s.waiting += read(side.waiting);
    s.acquire_timeouts += read(side.acquire_timeouts);
    s.handoffs += read(side.handoffs);
    for (std::size_t r = 0; r < close_reason_count; ++r) s.closed_by[r] += read(side.closed_by[r]);
    for (std::size_t k = 0; k < error_kind_count; ++k) s.errors_by[k] += read(side.errors_by[k]);
  }
  return s;
}

class endpoint_table::read_guard {
 public:
  explicit read_guard(const endpoint_table& t) noexcept {
    const shard_core* c = t_current_core;
    if (c == nullptr || &c->group() != &t.group_) {
      counter_ = &t.outside_readers_;
      counter_->fetch_add(1, std::memory_order_seq_cst);  // before the snapshot is loaded
    }
  }
  ~read_guard() {
    if (counter_ != nullptr) counter_->fetch_sub(1, std::memory_order_release);
  }
  read_guard(const read_guard&) = delete;
  read_guard& operator=(const read_guard&) = delete;

 private:
  std::atomic<std::uint64_t>* counter_ = nullptr;
};

template <class F>
void endpoint_table::for_each(const array& a, F&& f) {
  for (std::size_t i = 0; i <= a.mask; ++i) {
    for (const node* n = a.heads[i].load(std::memory_order_acquire); n != nullptr; n = n->next) {
      f(n->entry);
    }
  }
}

endpoint_table::endpoint_table(shard_group& group, const void* owner)
    : group_(group), owner_(owner), current_(new array(min_size)) {}

endpoint_table::~endpoint_table() {
  for (const retired& r : retired_) {
    delete r.old;
    if (r.entry != nullptr) endpoint_entry::drop_hold(r.entry);
  }
  array* a = current_.load();
  for_each(*a, [](endpoint_entry* e) {
    e->table.store(nullptr, std::memory_order_release);  // a handle left outlives the pool
    endpoint_entry::drop_hold(e);
  });
  delete a;
}

const endpoint_entry* endpoint_table::lookup(const array& a, const endpoint& ep,
                                             std::size_t h) noexcept {
  for (const node* n = a.heads[h & a.mask].load(std::memory_order_acquire); n != nullptr;
       n = n->next) {
    if (n->hash == h && n->entry->ep == ep) return n->entry;
  }
  return nullptr;
}

std::optional<endpoint_stats> endpoint_table::stats(const endpoint& ep) const {
  read_guard guard(*this);
  const array* a = current_.load(std::memory_order_seq_cst);
  const endpoint_entry* e = lookup(*a, ep, std::hash<endpoint>{}(ep));
  if (e == nullptr) return std::nullopt;
  return e->sum();
}

endpoint_entry& endpoint_table::use(const endpoint& ep) {
  const std::size_t h = std::hash<endpoint>{}(ep);
  {
    read_guard guard(*this);
    if (const endpoint_entry* e = lookup(*current_.load(std::memory_order_seq_cst), ep, h)) {
      auto* found = const_cast<endpoint_entry*>(e);
      if (found->try_use()) return *found;  // else removed meanwhile: a new one, below
    }
  }
  std::lock_guard lock(writer_);
  array* a = current_.load(std::memory_order_seq_cst);
  if (const endpoint_entry* e = lookup(*a, ep, h)) {  // raced, and listed (removals hold writer_)
    auto* found = const_cast<endpoint_entry*>(e);
    found->uses.fetch_add(1, std::memory_order_acq_rel);
    return *found;
  }
  auto made = std::make_unique<endpoint_entry>(ep, group_.size(), owner_, serials_++);
  endpoint_entry* e = made.get();
  e->uses.store(1, std::memory_order_relaxed);
  e->table.store(this, std::memory_order_relaxed);
  // In its chain: a node prepended, published with one release store (the table owns it then).
  std::atomic<const node*>& head = a->heads[h & a->mask];
  a->nodes.push_back(node{e, h, head.load(std::memory_order_relaxed)});
  head.store(&a->nodes.back(), std::memory_order_release);
  (void)made.release();
  listed_.store(++count_, std::memory_order_relaxed);
  if (count_ > a->mask + 1) rebuild((a->mask + 1) * 2);
  reclaim();
  return *e;
}

void endpoint_table::unuse(endpoint_entry& e) {
  if (e.uses.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::lock_guard lock(writer_);
  remove(e);
  reclaim();
}

void endpoint_table::sweep() {
  std::lock_guard lock(writer_);
  std::vector<endpoint_entry*> unused;
  for_each(*current_.load(std::memory_order_relaxed), [&](endpoint_entry* e) {
    if (e->uses.load(std::memory_order_acquire) == 0) unused.push_back(e);
  });
  for (endpoint_entry* e : unused) remove(*e);
  reclaim();
}

void endpoint_table::remove(endpoint_entry& e) {
  // Only an entry nobody uses, with no connection or budget hand-off on its way between
  // shards (a shard that takes it then makes its slab from this entry).
  if (e.budget.load(std::memory_order_seq_cst) != 0 ||
      e.waiting.load(std::memory_order_seq_cst) != 0) {
    return;  // the next sweep looks again
  }
  array* a = current_.load(std::memory_order_relaxed);
  const std::size_t h = std::hash<endpoint>{}(e.ep);
  std::atomic<const node*>& head = a->heads[h & a->mask];
  std::vector<const node*> before;
  const node* n = head.load(std::memory_order_relaxed);
  for (; n != nullptr && n->entry != &e; n = n->next) before.push_back(n);
  if (n == nullptr) return;  // not listed (removed already)
  std::uint32_t none = 0;
  if (!e.uses.compare_exchange_strong(none, endpoint_entry::removed, std::memory_order_acq_rel)) {
    return;  // used again meanwhile
  }
  // The nodes before it are copied (readers may be walking them); the copy ends where it was.
  const node* rest = n->next;
  for (auto it = before.rbegin(); it != before.rend(); ++it) {
    a->nodes.push_back(node{(*it)->entry, (*it)->hash, rest});
    rest = &a->nodes.back();
  }
  {
    std::lock_guard totals(removal_);
    head.store(rest, std::memory_order_seq_cst);
    removed_totals_ += e.sum();  // its gauges are 0: no slab holds a connection
  }
  a->dead += before.size() + 1;
  listed_.store(--count_, std::memory_order_relaxed);
  retire(retired{nullptr, &e, {}});
  // Mostly dead nodes, or mostly empty buckets: rebuilt smaller or at its size.
  const std::size_t size = a->mask + 1;
  if (a->dead > count_ + min_size || (size > min_size && count_ < size / 4)) {
    rebuild(std::max(min_size, std::bit_ceil(std::max<std::size_t>(count_, 1))));
  }
}

void endpoint_table::rebuild(std::size_t size) noexcept {
  // Only a speed-up: without memory for it the table stays as it is, correct, until a later
  // change tries again.
  try {
    rebuild_or_throw(size);
  } catch (const std::bad_alloc&) {
  }
}

void endpoint_table::rebuild_or_throw(std::size_t size) {
  array* old = current_.load(std::memory_order_relaxed);
  auto fresh = std::make_unique<array>(size);
  // Nodes are copied, never relinked: a reader may be walking the old chains.
  for (std::size_t i = 0; i <= old->mask; ++i) {
    for (const node* n = old->heads[i].load(std::memory_order_relaxed); n != nullptr; n = n->next) {
      std::atomic<const node*>& head = fresh->heads[n->hash & fresh->mask];
      fresh->nodes.push_back(node{n->entry, n->hash, head.load(std::memory_order_relaxed)});
      head.store(&fresh->nodes.back(), std::memory_order_relaxed);
    }
  }
  current_.store(fresh.release(), std::memory_order_seq_cst);
  retire(retired{old, nullptr, {}});
}

void endpoint_table::retire(retired r) {
  group_.marks(r.marks);  // after the unlink: a shard still in its turn may hold it
  retired_.push_back(std::move(r));
}

void endpoint_table::reclaim() {
  if (retired_.empty()) return;
  // A read-modify-write, ordered with read_guard's: a reader that counted itself after it began
  // its walk after the unlinks, and cannot reach what is freed.
  if (outside_readers_.fetch_add(0, std::memory_order_seq_cst) != 0) return;  // one may hold any
  const shard_core* c = t_current_core;
  const unsigned self = c != nullptr && &c->group() == &group_ ? c->index() : group_.size();
  std::erase_if(retired_, [&](const retired& r) {
    if (!group_.passed(r.marks, self)) return false;
    delete r.old;
    if (r.entry != nullptr) endpoint_entry::drop_hold(r.entry);
    return true;
  });
}

std::vector<std::pair<endpoint, endpoint_stats>> endpoint_table::all_stats() const {
  read_guard guard(*this);
  std::vector<const endpoint_entry*> found;
  found.reserve(listed_.load(std::memory_order_relaxed));
  for_each(*current_.load(std::memory_order_seq_cst),
           [&](const endpoint_entry* e) { found.push_back(e); });
  std::sort(found.begin(), found.end(),
            [](const endpoint_entry* a, const endpoint_entry* b) { return a->serial < b->serial; });
  std::vector<std::pair<endpoint, endpoint_stats>> out;
  out.reserve(found.size());
  for (const endpoint_entry* e : found) out.emplace_back(e->ep, e->sum());
  return out;
}

endpoint_stats endpoint_table::totals() const {
  read_guard guard(*this);
  std::lock_guard lock(removal_);
  endpoint_stats t = removed_totals_;
  for_each(*current_.load(std::memory_order_seq_cst),
           [&](const endpoint_entry* e) { t += e->sum(); });
  return t;
}

std::size_t endpoint_table::arrays_alive() const {
  std::lock_guard lock(writer_);
  return 1 + static_cast<std::size_t>(
                 std::count_if(retired_.begin(), retired_.end(),
                               [](const retired& r) { return r.old != nullptr; }));
}

std::size_t endpoint_table::retired_entries() const {
  std::lock_guard lock(writer_);
  return static_cast<std::size_t>(std::count_if(
      retired_.begin(), retired_.end(), [](const retired& r) { return r.entry != nullptr; }));
}

}  // namespace conpool::detail
