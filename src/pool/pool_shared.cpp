// SPDX-License-Identifier: MIT
#include "pool_shared.hpp"

#include <stdexcept>

namespace conpool::detail {

pool_shared::pool_shared(config c, shard_group& g)
    : cfg(std::move(c)),
      group(g),
      table(g, this),
      timings(std::make_unique<shard_timings[]>(g.size())),
      parts_(std::make_unique<std::unique_ptr<pool_core>[]>(g.size())) {}

pool_shared::~pool_shared() {
  // Each part is quiet (closed on its shard), or belongs to the calling thread's shard: a lone
  // shard's pool destroyed without close_pool closes its connections now.
  for (unsigned i = 0; i < group.size(); ++i) parts_[i].reset();
}

pool_core& pool_shared::make_part() {
  const shard_core* c = t_current_core;
  if (c == nullptr) throw std::logic_error("conpool::pool: no shard runs on this thread");
  if (&c->group() != &group) {
    throw std::logic_error(
        "conpool::pool: used on a shard that is not one of the pool's (another runtime, or a "
        "shard of its own)");
  }
  auto& part = parts_[c->index()];
  part = std::make_unique<pool_core>(*this, c->index());
  return *part;
}

void pool_shared::post(handoff* p, unsigned to) noexcept {
  shard_core& here = shard_core::current();
  p->on_cqe = &handoff::arrived;
  p->pool = this;
  p->from = here.index();
  p->to = to;
  open_work_.fetch_add(1, std::memory_order_relaxed);
  here.post(to, p);
}

void pool_shared::work_done() noexcept {
  if (open_work_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      counting_parts_.load(std::memory_order_acquire)) {
    all_closed();
  }
}

void pool_shared::start_close() {
  pool_core& mine = part();
  if (!closing_.exchange(true, std::memory_order_acq_rel)) {
    // Every shard's part reports once it is quiet; hand-offs still travelling count too. The
    // count cannot reach 0 before the flag is up: no part has been asked yet.
    open_work_.fetch_add(group.size(), std::memory_order_relaxed);
    counting_parts_.store(true, std::memory_order_release);
    for (unsigned j = 0; j < group.size(); ++j) {
      if (j == mine.index) continue;
      auto* p = new handoff;
      p->kind = handoff_kind::close_part;
      post(p, j);
    }
  }
  mine.begin_close();
}

bool pool_shared::wait_closed(close_waiter& w) {
  std::lock_guard lock(close_mutex_);
  if (closed_) return false;
  close_waiters_.push_back(&w);
  return true;
}

void pool_shared::all_closed() noexcept {
  std::vector<close_waiter*> waiters;
  {
    std::lock_guard lock(close_mutex_);
    closed_ = true;
    waiters.swap(close_waiters_);
  }
  // From here the pool may be freed by a woken task: only the waiters are touched.
  shard_core& here = shard_core::current();
  for (close_waiter* w : waiters) {
    if (w->shard == here.index()) {
      here.schedule(w->handle);
    } else {
      here.post(w->shard, w);
    }
  }
}

void close_waiter::woken(completion* c, unsigned, int res, unsigned) noexcept {
  auto* w = static_cast<close_waiter*>(c);
  if (res < 0) {  // it never left: still ours
    shard_core::current().repost(w->shard, w, res);
    return;
  }
  shard_core::current().schedule(w->handle);
}

}  // namespace conpool::detail
