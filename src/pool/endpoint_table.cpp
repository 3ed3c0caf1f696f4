// SPDX-License-Identifier: MIT
#include "endpoint_table.hpp"

#include "shard_core.hpp"

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
    : group_(group), owner_(owner), current_(new snapshot) {}

endpoint_table::~endpoint_table() {
  for (const retired& r : retired_) delete r.old;
  delete current_.load();
}

const endpoint_entry* endpoint_table::find(const endpoint& ep) const noexcept {
  read_guard guard(*this);
  const snapshot* s = current_.load(std::memory_order_seq_cst);
  auto it = s->index.find(ep);
  return it == s->index.end() ? nullptr : it->second;
}

endpoint_entry& endpoint_table::intern(const endpoint& ep) {
  {
    const snapshot* s = current_.load(std::memory_order_seq_cst);  // a shard: QSBR covers it
    if (auto it = s->index.find(ep); it != s->index.end()) return *it->second;
  }
  std::lock_guard lock(writer_);
  const snapshot* old = current_.load(std::memory_order_seq_cst);
  if (auto it = old->index.find(ep); it != old->index.end()) return *it->second;  // raced
  auto fresh = std::make_unique<snapshot>(*old);
  entries_.push_back(std::make_unique<endpoint_entry>(ep, group_.size(), owner_));
  endpoint_entry* e = entries_.back().get();
  fresh->index.emplace(ep, e);
  fresh->order.push_back(e);
  current_.store(fresh.release(), std::memory_order_seq_cst);
  retired r{old, {}};
  group_.marks(r.marks);  // after the swap: a shard still in its turn may hold `old`
  retired_.push_back(std::move(r));
  reclaim();
  return *e;
}

void endpoint_table::reclaim() {
  if (outside_readers_.load(std::memory_order_seq_cst) != 0) return;  // one may hold any
  const unsigned self = t_current_core != nullptr ? t_current_core->index() : group_.size();
  std::erase_if(retired_, [&](const retired& r) {
    if (!group_.passed(r.marks, self)) return false;
    delete r.old;
    return true;
  });
}

std::vector<std::pair<endpoint, endpoint_stats>> endpoint_table::all_stats() const {
  read_guard guard(*this);
  const snapshot* s = current_.load(std::memory_order_seq_cst);
  std::vector<std::pair<endpoint, endpoint_stats>> out;
  out.reserve(s->order.size());
  for (const endpoint_entry* e : s->order) out.emplace_back(e->ep, e->sum());
  return out;
}

std::size_t endpoint_table::snapshots_alive() const {
  std::lock_guard lock(writer_);
  return retired_.size() + 1;
}

}  // namespace conpool::detail
