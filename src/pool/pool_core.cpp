// SPDX-License-Identifier: MIT
// A pool's part on one shard: the slots' transitions (the table is in pool_core.hpp), their
// operations in the kernel (watcher, monitor, close) and what their completions mean.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "pool_shared.hpp"

namespace conpool::detail {

pool_core::pool_core(pool_shared& sh, unsigned i)
    : shared(sh),
      cfg(sh.cfg),
      index(i),
      multi(sh.group.size() > 1),
      checks_health(static_cast<bool>(sh.cfg.health_check)),
      strict(sh.cfg.check_on_reuse),
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
  to_watch_.reserve(16);  // slabs with new idle slots in one turn: no allocation on the hit path
  // Idle and lifetime expiry share one timer per pool, not one per connection: a sweep every
  // quarter of the shorter limit (1 ms to 1 s) closes what expired; the gate also checks.
  const double period =
      std::min(cfg.max_idle_time.count(), cfg.max_connection_lifetime.count()) / 4;
  to_kernel_timespec(std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::duration<double>(std::clamp(period, 0.001, 1.0))),
                     sweeper_.interval);
}

pool_core::~pool_core() {
  if (!finished_) shut_now();
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
  for (auto& [ep, slab] : slabs_) close_idle(*slab);
  shard_->drop_turn_hook(&watch_hook_);
  wait_for_kernel();
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

// ---- the gate's question to the kernel --------------------------------------------------------

bool pool_core::peer_quiet(slot& s) noexcept {
  const int fd = s.flow.native_handle();
  // A few rounds: a TLS server may have sent a ticket or two, each run through wolfSSL.
  for (int round = 0; round < 4; ++round) {
    std::byte peek{};
    const ssize_t n = ::recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;  // would block: nothing there
    }
    // 0: FIN. Bytes on a plain connection nobody asked for: not clean. A TLS connection whose
    // watcher is in the kernel: that receive owns the buffer, so the bytes cannot be judged.
    if (n == 0 || !s.flow.is_tls() || s.watcher != kernel_op::off) return false;
    const std::span<std::byte> buf = tls_watch_buffer(s.flow);
    const ssize_t got = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (got <= 0) return false;
    if (tls_absorb(s.flow, static_cast<std::size_t>(got), true) != tls_watch::quiet) return false;
    tls_remember(*s.slab, s.flow);
  }
  return false;  // still talking after four rounds: not a quiet connection
}

// ---- transitions -------------------------------------------------------------------------------

slot* pool_core::take_new(endpoint_slab& slab) noexcept {
  if (closed) return nullptr;
  // The budget is the limit across shards; this shard's free slots always cover it.
  std::atomic<int>& budget = slab.entry.budget;
  int used = budget.load(std::memory_order_relaxed);
  do {
    if (used >= cfg.max_connections_per_endpoint) return nullptr;
  } while (!budget.compare_exchange_weak(used, used + 1, std::memory_order_seq_cst));
  ++live_;
  slot* s = slab.take_free();
  move_to(s, slot_state::opening);
  return s;
}

void pool_core::opened(slot* s, conpool::flow f) noexcept {
  s->flow = std::move(f);
  s->created_at = s->idle_since = loop_now();
  s->use_count = 0;
  s->peer_gone = false;
  endpoint_slab& slab = *s->slab;
  bump(slab.stats.total_created);
  if (cfg.on_connection_created) cfg.on_connection_created(slab.ep);
  arm_monitor(s);
}

void pool_core::open_failed(slot* s, bool counted) noexcept {
  if (counted) bump(s->slab->stats.errors);
  move_to(s, slot_state::free);
  vacate(s);
  give_back_budget(*s->slab);
  if (closing_) report_if_shut();  // last: once shut, the part may be freed
}

void pool_core::lend_fresh(slot* s) noexcept {
  move_to(s, slot_state::active);
  bump(s->slab->stats.active);
  begin_lease(s);
}

void pool_core::park(slot* s) noexcept {
  if (closed || s->slab->draining > 0) {  // opened while the pool (or the slab) closed
    close(s, false);
    return;
  }
  to_idle(s, loop_now());
}

void pool_core::relend(endpoint_slab& slab, slot* s) noexcept {
  // The gate: news the kernel holds is applied first (its monitor may have fired); strict mode
  // also asks the kernel.
  if (shard_->kernel_has_news()) [[unlikely]] shard_->catch_up();
  if (s->peer_gone || (strict && !peer_quiet(*s))) {
    close(s, false);
    return;
  }
  if (slab.waiters_head == nullptr) [[unlikely]] {  // the news served them (a budget freed)
    drop(slab.stats.active);
    to_idle(s, loop_now());
    return;
  }
  // Active (or checking): its waiter counts the use once it resumes with it.
  if (checks_health) {
    if (s->state != slot_state::checking) move_to(s, slot_state::checking);
  } else {
    move_to(s, slot_state::active);
  }
  grant(slab, s);
}

void pool_core::grant(endpoint_slab& slab, slot* s) noexcept {
  slot_waiter* w = slab.pop_waiter();
  w->granted = s;
  if (w->node != nullptr) w->node->unpark(w);
  shard_core::current().schedule(w->handle);
}

void pool_core::close(slot* s, bool after_error) noexcept {
  endpoint_slab& slab = *s->slab;
  switch (s->state) {
    case slot_state::idle:
      slab.unlink_idle(s);
      break;
    case slot_state::checking:
    case slot_state::active:
      drop(slab.stats.active);
      break;
    case slot_state::opening:
    case slot_state::leaving:
      break;
    case slot_state::free:
    case slot_state::closing:
      return;
  }
  move_to(s, slot_state::closing);
  bump(slab.stats.total_closed);
  if (after_error) bump(slab.stats.errors);
  if (cfg.on_connection_closed) cfg.on_connection_closed(slab.ep);
  if (s->watcher == kernel_op::armed) unwatch(s);
  if (s->monitor == kernel_op::armed) unmonitor(s);
  if (s->flow.is_tls()) {
    // TLS says goodbye first: close_notify, hard-linked so that the close runs whatever the
    // send's fate, and MSG_DONTWAIT so that a full socket never holds the close back.
    const std::span<const std::byte> bye = tls_close_notify(s->flow);
    if (!bye.empty()) {
      io_uring_sqe* sqe = slot_sqe(s, s, slot::goodbye, 2);  // a link never spans two batches
      io_uring_prep_send(sqe, s->flow.native_handle(), bye.data(), bye.size(),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      sqe->flags |= IOSQE_IO_HARDLINK;
    }
  }
  io_uring_sqe* sqe = slot_sqe(s, s, slot::close);
  io_uring_prep_close(sqe, s->flow.release());
}

void pool_core::finished(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  s->flow = conpool::flow();  // its socket is closed; this frees a TLS session's memory
  move_to(s, slot_state::free);
  vacate(s);
  give_back_budget(slab);
}

void pool_core::give_back_budget(endpoint_slab& slab) noexcept {
  slab.entry.budget.fetch_sub(1, std::memory_order_seq_cst);
  serve_waiters(slab);
  if (multi) offer_budget(slab);
  slab.drained.notify();
}

void pool_core::vacate(slot* s) noexcept {
  s->use_count = 0;
  s->peer_gone = false;
  --s->slab->in_use;
  --live_;
  s->slab->put_free(s);
}

void pool_core::serve_waiters(endpoint_slab& slab) noexcept {
  // While a close_all_connections drains the slab, nothing new opens: waiters wait for its end.
  if (closed || slab.draining > 0) return;
  while (slab.waiters_head != nullptr) {
    slot* fresh = take_new(slab);
    if (fresh == nullptr) return;
    grant(slab, fresh);  // the longest waiter opens a connection in it
  }
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

// ---- the kernel's side: watcher, monitor, close ------------------------------------------------

io_uring_sqe* pool_core::slot_sqe(slot* s, completion* c, unsigned role,
                                  unsigned reserve) noexcept {
  io_uring_sqe* sqe = shard_->sqe(reserve);
  io_uring_sqe_set_data64(sqe, user_data(c, static_cast<sqe_role>(role)));
  ++s->owed;
  ++outstanding_;
  shard_->expect(1);
  return sqe;
}

void pool_core::queue_watchers(endpoint_slab& slab) {
  slab.watch_queued = true;
  to_watch_.push_back(&slab);
  shard_->at_turn_end(&watch_hook_);
}

void pool_core::arm_queued_watchers(shard_core::turn_hook* h) noexcept {
  pool_core& core = *static_cast<watch_hook*>(h)->core;
  for (endpoint_slab* slab : core.to_watch_) {
    slab->watch_queued = false;
    // What became idle this turn is on top of the stack, above every slot that was idle
    // before (those have a watcher, or one whose cancel will re-arm it).
    for (slot* s = slab->idle_top; s != nullptr;) {
      slot* below = s->next;
      if (s->watcher == kernel_op::armed) break;
      if (s->watcher == kernel_op::off) {
        if (!core.multi || !core.to_waiting_shard(s)) core.arm_watcher(s);
      }
      s = below;
    }
  }
  core.to_watch_.clear();
}

void pool_core::arm_watcher(slot* s) noexcept {
  io_uring_sqe* sqe = slot_sqe(s, s, slot::watch);
  if (s->flow.is_tls()) {
    // TLS: what arrives are records (tickets, alerts) that wolfSSL must see; slot_cqe judges.
    const std::span<std::byte> buf = tls_watch_buffer(s->flow);
    io_uring_prep_recv(sqe, s->flow.native_handle(), buf.data(), buf.size(), 0);
  } else {
    // A zero-length recv: stays pending while the connection is quiet; completes when the
    // server sends bytes (0), closes (0) or resets (-ECONNRESET). It consumes nothing.
    io_uring_prep_recv(sqe, s->flow.native_handle(), nullptr, 0, 0);
  }
  s->watcher = kernel_op::armed;
}

void pool_core::unwatch(slot* s) noexcept {
  io_uring_sqe* sqe = slot_sqe(s, s, slot::unwatch);
  io_uring_prep_cancel64(sqe, user_data(s, static_cast<sqe_role>(slot::watch)), 0);
  s->watcher = kernel_op::cancelling;
}

void pool_core::arm_monitor(slot* s) noexcept {
  io_uring_sqe* sqe = slot_sqe(s, &s->monitor_op, role_main);
  io_uring_prep_poll_add(sqe, s->flow.native_handle(), POLLRDHUP | POLLERR | POLLHUP);
  s->monitor = kernel_op::armed;
  // Alone it wakes no task (it marks or closes a connection), so it keeps no deadlocked loop
  // waiting. Its cancel, when one is sent, counts as usual.
  shard_->add_background(1);
}

void pool_core::unmonitor(slot* s) noexcept {
  io_uring_sqe* sqe = slot_sqe(s, &s->monitor_op, role_cancel);
  io_uring_prep_poll_remove(sqe, user_data(&s->monitor_op, role_main));
  s->monitor = kernel_op::cancelling;
}

void pool_core::on_slot_cqe(completion* c, unsigned role, int res, unsigned) noexcept {
  auto* s = static_cast<slot*>(c);
  s->slab->core.slot_cqe(s, role, res);
}

void pool_core::on_monitor_cqe(completion* c, unsigned role, int res, unsigned) noexcept {
  slot* s = static_cast<peer_monitor*>(c)->owner;
  s->slab->core.monitor_cqe(s, role, res);
}

void pool_core::peer_spoke(slot* s) noexcept {
  s->peer_gone = true;
  if (s->state == slot_state::idle) close(s, false);
  // Leased or checking: closed when it comes back. Leaving: closed, not sent (settle_slot).
}

void pool_core::slot_cqe(slot* s, unsigned role, int res) noexcept {
  --s->owed;
  --outstanding_;
  if (role == slot::watch) {
    s->watcher = kernel_op::off;
    if (res > 0 && s->flow.is_tls() && s->state != slot_state::closing) {
      // A TLS watcher's bytes belong to the stream. Idle or on the way out, they are judged:
      // post-handshake records only (a NewSessionTicket) keep the connection; out on a lease
      // (its cancel came too late), they wait there for the lease's reads, in order.
      const bool judge = s->state == slot_state::idle || s->state == slot_state::leaving;
      const tls_watch v = tls_absorb(s->flow, static_cast<std::size_t>(res), judge);
      if (judge && v != tls_watch::quiet) {
        peer_spoke(s);
      } else if (s->state == slot_state::idle) {
        tls_remember(*s->slab, s->flow);
        arm_watcher(s);
      }
    } else if (res != -ECANCELED) {
      // Anything but our own cancel is the server speaking up: bytes, FIN or RST on a
      // connection nobody asked it to use.
      if (s->state != slot_state::closing) peer_spoke(s);
    } else if (s->state == slot_state::idle) {
      // Lent and given back while its cancel was in flight: watched again, unless a shard
      // waits for it (the turn's end skipped it, its watcher being in the kernel then).
      if (!multi || !to_waiting_shard(s)) arm_watcher(s);
    }
  }
  settle_slot(s);
}

void pool_core::monitor_cqe(slot* s, unsigned role, int res) noexcept {
  --s->owed;
  --outstanding_;
  if (role == role_main) {
    s->monitor = kernel_op::off;
    shard_->add_background(-1);
    // The poll's events (POLLRDHUP: FIN; POLLERR / POLLHUP: RST), or an error; -ECANCELED is
    // our own remove.
    if (res != -ECANCELED && s->state != slot_state::closing) peer_spoke(s);
  }
  settle_slot(s);
}

void pool_core::settle_slot(slot* s) noexcept {
  if (s->owed == 0) {
    if (s->state == slot_state::closing) {
      finished(s);
    } else if (s->state == slot_state::leaving) {
      if (s->peer_gone) {
        // Its peer spoke up on the way out: it goes nowhere, and an asker hears so.
        if (std::exchange(s->answers_ask, false)) answer_no_idle(*s->slab, s->bound_for);
        close(s, false);
      } else {
        sent(s);
      }
    }
  }
  if (closing_) report_if_shut();  // last: once quiet, the part may be freed
}

// ---- expiry ------------------------------------------------------------------------------------

void pool_core::sweep() noexcept {
  const auto now = loop_now();
  for (auto& [ep, slab] : slabs_) {
    for (slot* s = slab->idle_top; s != nullptr;) {
      slot* next = s->next;
      if (worn_out(*s, now) || idle_too_long(*s, now)) close(s, false);
      s = next;
    }
  }
}

void pool_core::arm_sweeper() noexcept {
  if (sweeper_.armed) return;
  io_uring_sqe* sqe = shard_->sqe();
  io_uring_prep_timeout(sqe, &sweeper_.interval, 0, 0);
  io_uring_sqe_set_data64(sqe, user_data(&sweeper_, role_main));
  sweeper_.armed = true;
  ++outstanding_;
  shard_->expect(1);
}

void pool_core::stop_sweeper() noexcept {
  if (!sweeper_.armed || sweeper_.removing) return;
  sweeper_.removing = true;
  io_uring_sqe* sqe = shard_->sqe();
  io_uring_prep_timeout_remove(sqe, user_data(&sweeper_, role_main), 0);
  io_uring_sqe_set_data64(sqe, user_data(&sweeper_, role_cancel));
  ++outstanding_;
  shard_->expect(1);
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
  if (core.closing_) core.report_if_shut();  // last: once quiet, the part may be freed
}

void pool_core::wait_for_kernel() noexcept {
  stop_sweeper();
  // Slots and the sweeper live in this object: wait here until the kernel owes them nothing.
  shard_->wait_for_cqes(outstanding_);
}

}  // namespace conpool::detail
