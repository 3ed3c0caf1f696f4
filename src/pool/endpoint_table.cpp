// SPDX-License-Identifier: MIT
#include "endpoint_table.hpp"

#include "shard_core.hpp"

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
    for (std::size_t r = 0; r < close_reason_count; ++r) s.closed_by[r] += read(side.closed_by[r]);
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

endpoint_table::endpoint_table(shard_group& group, const void* owner)
    : group_(group), owner_(owner), current_(new array(64)) {}

endpoint_table::~endpoint_table() {
  for (const retired& r : retired_) delete r.old;
  delete current_.load();
}

void endpoint_table::locate(std::size_t i, unsigned& chunk, std::size_t& at) noexcept {
  const std::size_t p = i + 16;
  const unsigned top = static_cast<unsigned>(std::bit_width(p)) - 1;  // 16 << chunk <= p
  chunk = top - 4;
  at = p - (std::size_t{1} << top);
}

const endpoint_entry* endpoint_table::lookup(const array& a, const endpoint& ep,
                                             std::size_t h) noexcept {
  for (const node* n = a.heads[h & a.mask].load(std::memory_order_acquire); n != nullptr;
       n = n->next) {
    if (n->hash == h && n->entry->ep == ep) return n->entry;
  }
  return nullptr;
}

const endpoint_entry* endpoint_table::find(const endpoint& ep) const noexcept {
  read_guard guard(*this);
  const array* a = current_.load(std::memory_order_seq_cst);
  return lookup(*a, ep, std::hash<endpoint>{}(ep));
}

endpoint_entry& endpoint_table::intern(const endpoint& ep) {
  const std::size_t h = std::hash<endpoint>{}(ep);
  // A shard: QSBR covers it.
  if (const endpoint_entry* e = lookup(*current_.load(std::memory_order_seq_cst), ep, h)) {
    return *const_cast<endpoint_entry*>(e);
  }
  std::lock_guard lock(writer_);
  array* a = current_.load(std::memory_order_seq_cst);
  if (const endpoint_entry* e = lookup(*a, ep, h)) return *const_cast<endpoint_entry*>(e);  // raced
  entries_.push_back(std::make_unique<endpoint_entry>(ep, group_.size(), owner_));
  endpoint_entry* e = entries_.back().get();
  // In the added order first (readers see it once published_ counts it).
  unsigned chunk = 0;
  std::size_t at = 0;
  locate(count_, chunk, at);
  if (!order_[chunk]) order_[chunk].reset(new std::atomic<endpoint_entry*>[std::size_t{16} << chunk]);
  order_[chunk][at].store(e, std::memory_order_relaxed);
  published_.store(count_ + 1, std::memory_order_release);
  // Then in its chain: a node prepended, published with one release store.
  std::atomic<const node*>& head = a->heads[h & a->mask];
  a->nodes.push_back(node{e, h, head.load(std::memory_order_relaxed)});
  head.store(&a->nodes.back(), std::memory_order_release);
  if (++count_ > a->mask + 1) grow();
  reclaim();
  return *e;
}

void endpoint_table::grow() {
  array* old = current_.load(std::memory_order_relaxed);
  auto fresh = std::make_unique<array>((old->mask + 1) * 2);
  // Nodes are copied, never relinked: a reader may be walking the old chains.
  for (const node& n : old->nodes) {
    std::atomic<const node*>& head = fresh->heads[n.hash & fresh->mask];
    fresh->nodes.push_back(node{n.entry, n.hash, head.load(std::memory_order_relaxed)});
    head.store(&fresh->nodes.back(), std::memory_order_relaxed);
  }
  current_.store(fresh.release(), std::memory_order_seq_cst);
  retired r{old, {}};
  group_.marks(r.marks);  // after the swap: a shard still in its turn may hold `old`
  retired_.push_back(std::move(r));
}

void endpoint_table::reclaim() {
  if (retired_.empty()) return;
  if (outside_readers_.load(std::memory_order_seq_cst) != 0) return;  // one may hold any
  const unsigned self = t_current_core != nullptr ? t_current_core->index() : group_.size();
  std::erase_if(retired_, [&](const retired& r) {
    if (!group_.passed(r.marks, self)) return false;
    delete r.old;
    return true;
  });
}

std::vector<std::pair<endpoint, endpoint_stats>> endpoint_table::all_stats() const {
  const std::size_t n = published_.load(std::memory_order_acquire);
  std::vector<std::pair<endpoint, endpoint_stats>> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned chunk = 0;
    std::size_t at = 0;
    locate(i, chunk, at);
    const endpoint_entry* e = order_[chunk][at].load(std::memory_order_relaxed);
    out.emplace_back(e->ep, e->sum());
  }
  return out;
}

std::size_t endpoint_table::arrays_alive() const {
  std::lock_guard lock(writer_);
  return retired_.size() + 1;
}

}  // namespace conpool::detail
