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

#include <conpool/cancel.hpp>

#include "opening.hpp"
#include "pool_shared.hpp"

namespace conpool::detail {

namespace {
loop_clock::duration to_loop(std::chrono::duration<double> d) {
  return std::chrono::duration_cast<loop_clock::duration>(d);
}
}  // namespace

pool_core::pool_core(pool_shared& sh, unsigned i)
    : shared(sh),
      cfg(sh.cfg),
      index(i),
      multi(sh.group.size() > 1),
      checks_health(static_cast<bool>(sh.cfg.health_check)),
      strict(sh.cfg.check_on_reuse),
      closed(sh.closing()),
      names(cfg.dns_ttl),
      timings(sh.timings[index]),
      lifetime_(to_loop(cfg.max_connection_lifetime)),
      idle_limit_(to_loop(cfg.max_idle_time)),
      check_every_(cfg.health_check_interval ? to_loop(*cfg.health_check_interval)
                                             : loop_clock::duration::zero()),
      reclaim_after_(cfg.endpoint_idle_timeout ? to_loop(*cfg.endpoint_idle_timeout)
                                               : loop_clock::duration::zero()),
      leak_after_(cfg.leak_threshold ? to_loop(*cfg.leak_threshold) : loop_clock::duration::zero()),
      max_uses_(cfg.max_connection_uses ? static_cast<std::uint32_t>(*cfg.max_connection_uses)
                                        : UINT32_MAX),
      background_(nullptr),
      random_state_(0x9e3779b97f4a7c15ULL ^ reinterpret_cast<std::uintptr_t>(this) ^
                    static_cast<std::uint64_t>(loop_clock::now().time_since_epoch().count())) {
  names.on_dropped = [this](const std::string& host, const std::vector<socket_address>& gone) {
    drain_addresses(host, gone);
  };
  if (cfg.max_idle_connections) {
    const auto shards = static_cast<std::uint64_t>(sh.group.size());
    idle_share_ = static_cast<std::uint32_t>(
        (static_cast<std::uint64_t>(*cfg.max_idle_connections) + shards - 1) / shards);
  }
  timer_.on_cqe = &pool_core::on_timer;
  timer_.core = this;
  watch_hook_.run = &pool_core::arm_queued_watchers;
  watch_hook_.core = this;
  background_hook_.run = &pool_core::background_ended;
  background_hook_.core = this;
  to_watch_.reserve(16);  // slabs with new idle slots in one turn: no allocation on the hit path
  // Idle and lifetime expiry share one timer per part, not one per connection: a sweep every
  // quarter of the shortest span it must resolve (idle time, lifetime, the lifetime's jitter
  // window, the health check interval), 1 ms to 1 s; the gate also checks.
  double span = std::min(cfg.max_idle_time.count(), cfg.max_connection_lifetime.count());
  if (cfg.lifetime_jitter > 0) {
    span = std::min(span, cfg.max_connection_lifetime.count() * cfg.lifetime_jitter);
  }
  if (cfg.health_check_interval) span = std::min(span, cfg.health_check_interval->count());
  if (cfg.dns_ttl.count() > 0) span = std::min(span, cfg.dns_ttl.count());
  sweep_every_ = to_loop(std::chrono::duration<double>(std::clamp(span / 4, 0.001, 1.0)));
  sockopts_.keepalive = cfg.tcp_keepalive;
  if (cfg.tcp_user_timeout) {
    sockopts_.user_timeout = std::chrono::milliseconds(
        static_cast<std::int64_t>(cfg.tcp_user_timeout->count() * 1000 + 0.5));
  }
}

pool_core::~pool_core() {
  if (!finished_) shut_now();
}

std::string pool_core::busy(bool count_background) const {
  if (count_background && background_running_ != 0) {
    return std::to_string(background_running_) + " background task(s) (health checks, warming)";
  }
  for (const auto& [ep, slab] : slabs_) {
    if (slab->pins != 0) {
      return std::to_string(slab->pins) + " with_connection call(s) on " + ep.get().to_string() +
             " not finished (made and never awaited, or still running)";
    }
    std::uint64_t opening = 0;
    std::as_const(*slab).for_each_slot([&opening](const slot& sl) {
      if (sl.state == slot_state::opening && !sl.warming) ++opening;  // a caller's open
    });
    if (slab->waiters_head != nullptr) {
      return "task(s) waiting for a connection of " + ep.get().to_string();
    }
    const std::uint64_t active = read(slab->stats.active);
    if (active != 0 || opening != 0 || !slab->drained.handles.empty()) {
      return std::to_string(active) + " leased, " + std::to_string(opening) +
             " opening, " + std::to_string(slab->drained.handles.size()) +
             " task(s) closing connections of " + ep.get().to_string();
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
  for (auto& [ep, slab] : slabs_) close_idle(*slab, close_reason::pool_closed);
  shard_->drop_turn_hook(&watch_hook_);
  shard_->drop_turn_hook(&background_hook_);
  wait_for_kernel();
  finished_ = true;
}

void pool_core::orphan(std::unique_ptr<pool_shared> owner) noexcept {
  // Leases or waiters still out are the caller's bug, stopped here as the destructor would.
  if (std::string why = busy(false); !why.empty()) {
    std::fprintf(stderr, "conpool: pool destroyed while in use: %s\n", why.c_str());
    std::abort();
  }
  orphan_ = std::move(owner);
  closed = true;  // nothing new starts; what runs ends soon and closes its connection
  background_.cancel();
}

endpoint_slab& pool_core::slab_lookup(const endpoint& ep) {
  auto it = slabs_.find(ep);
  if (it == slabs_.end()) {
    if (std::string why = ep.problem(); !why.empty())
      throw std::invalid_argument("conpool: " + why);
    endpoint_entry& entry = shared.table.use(ep);  // given back when the slab goes
    try {
      auto slab = std::make_unique<endpoint_slab>(*this, cfg.max_connections_per_endpoint, entry,
                                                  index);
      it = slabs_.emplace(std::cref(entry.ep), std::move(slab)).first;
    } catch (...) {
      shared.table.unuse(entry);
      throw;
    }
    // Handles find this shard's slab through the entry (cleared when the slab goes).
    it->second->stats.slab = it->second.get();
    if (cfg.min_idle_per_endpoint > 0) top_up(*it->second);
    note_unused(*it->second);  // a handle's, never used: reclaimed in time too
  }
  last_key_ = &it->first.get();
  last_slab_ = it->second.get();
  return *last_slab_;
}

endpoint_slab* pool_core::find(const endpoint& ep) const noexcept {
  auto it = slabs_.find(ep);
  return it == slabs_.end() ? nullptr : it->second.get();
}

// ---- the gate's question to the kernel --------------------------------------------------------

namespace {
// The reason a socket error means: the kernel gave up on keepalive probes or unacknowledged
// data (ETIMEDOUT), or anything else (a reset, most often).
close_reason of_error(int err) noexcept {
  return err == ETIMEDOUT ? close_reason::keepalive_timeout : close_reason::peer_reset;
}
}  // namespace

bool pool_core::peer_quiet(slot& s) noexcept {
  const int fd = s.flow.native_handle();
  // A few rounds: a TLS server may have sent a ticket or two, each run through wolfSSL.
  for (int round = 0; round < 4; ++round) {
    std::byte peek{};
    const ssize_t n = ::recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;  // would block: nothing there
      s.gone_why = static_cast<std::uint8_t>(of_error(errno));
      return false;
    }
    // 0: FIN. Bytes on a plain connection nobody asked for: not clean. A TLS connection whose
    // watcher is in the kernel: that receive owns the buffer, so the bytes cannot be judged.
    if (n == 0) {
      s.gone_why = static_cast<std::uint8_t>(close_reason::peer_closed);
      return false;
    }
    s.gone_why = static_cast<std::uint8_t>(close_reason::stray_bytes);
    if (!s.flow.is_tls() || s.watcher != kernel_op::off) return false;
    const std::span<std::byte> buf = tls_watch_buffer(s.flow);
    const ssize_t got = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (got <= 0) return false;
    const tls_watch v = tls_absorb(s.flow, static_cast<std::size_t>(got), true);
    if (v == tls_watch::closed) s.gone_why = static_cast<std::uint8_t>(close_reason::peer_closed);
    if (v != tls_watch::quiet) return false;
    tls_remember(*s.slab, s.flow);
  }
  return false;  // still talking after four rounds: not a quiet connection
}

close_reason pool_core::gone_reason(slot& s) noexcept {
  if (s.gone_why != error_pending) return static_cast<close_reason>(s.gone_why);
  // The monitor saw POLLERR: the socket's error says which (unless a lease's read took it).
  int err = 0;
  socklen_t len = sizeof err;
  if (s.flow.is_open() &&
      ::getsockopt(s.flow.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    return of_error(err);
  }
  return close_reason::peer_reset;
}

close_reason pool_core::unfit_reason(slot& s, loop_clock::time_point now) const noexcept {
  if (s.peer_gone) return gone_reason(s);
  if (s.use_count >= max_uses_) return close_reason::max_uses;
  if (now > s.expires_at) return close_reason::lifetime_expired;
  if (s.state == slot_state::idle && idle_too_long(s, now)) return close_reason::idle_expired;
  return gone_reason(s);  // strict mode: the kernel's answer (peer_quiet set it)
}

close_reason pool_core::release_reason(slot& s, loop_clock::time_point now) const noexcept {
  if (closed) return close_reason::pool_closed;
  if (s.peer_gone) return gone_reason(s);
  if (s.slab->draining > 0) return close_reason::drained;
  return unfit_reason(s, now);
}

// ---- transitions -------------------------------------------------------------------------------

slot* pool_core::take_new(endpoint_slab& slab) noexcept {
  if (closed) return nullptr;
  // Backing off: one open at a time, once its step has come.
  const bool trial = backing_off(slab);
  if (trial && (slab.trial_open || loop_now() < slab.next_open_at)) [[unlikely]] return nullptr;
  // The budget is the limit across shards; this shard's free slots always cover it.
  std::atomic<int>& budget = slab.entry.budget;
  int used = budget.load(std::memory_order_relaxed);
  do {
    if (used >= cfg.max_connections_per_endpoint) return nullptr;
  } while (!budget.compare_exchange_weak(used, used + 1, std::memory_order_seq_cst));
  slot* s = slab.take_free();
  if (s == nullptr) [[unlikely]] {  // no memory for the slab's next chunk: as at the limit
    budget.fetch_sub(1, std::memory_order_seq_cst);
    return nullptr;
  }
  ++live_;
  move_to(s, slot_state::opening);
  bump(slab.stats.opening);
  s->open_epoch = slab.open_epoch;
  s->trial = trial;
  if (trial) slab.trial_open = true;
  return s;
}

void pool_core::opened(slot* s, conpool::flow f) noexcept {
  s->flow = std::move(f);
  const auto now = loop_now();
  s->created_at = s->idle_since = s->checked_at = now;
  // Its own lifetime: shortened by up to lifetime_jitter, so that connections opened together
  // do not all expire in one sweep.
  s->expires_at = now + lifetime_;
  if (cfg.lifetime_jitter > 0) {
    s->expires_at -= std::chrono::duration_cast<loop_clock::duration>(
        lifetime_ * (cfg.lifetime_jitter * random_fraction()));
  }
  s->use_count = 0;
  s->peer_gone = false;
  endpoint_slab& slab = *s->slab;
  drop(slab.stats.opening);
  bump(slab.stats.total_created);
  if (cfg.on_connection_created) cfg.on_connection_created(slab.ep);
  arm_monitor(s);
  if (s->trial) {
    s->trial = false;
    slab.trial_open = false;
  }
  backoff_reset(slab);
  // A host name's answer is refreshed on the timer while it has connections, leased or not.
  if (cfg.drain_dropped_addresses && !slab.ep.is_unix()) wake_at(now + sweep_every_);
  // Its leases are looked at for leaks on the timer too (a fresh lease's deadline).
  if (leak_after_ != loop_clock::duration::zero()) wake_at(now + leak_after_, true);
}

void pool_core::open_failed(slot* s, std::error_code error) noexcept {
  endpoint_slab& slab = *s->slab;
  const bool counted = error != std::errc::operation_canceled && error != errc::pool_closed;
  drop(slab.stats.opening);
  if (counted) {
    bump(slab.stats.errors);
    bump(slab.stats.errors_by[static_cast<std::size_t>(open_error_kind(error))]);
  }
  if (s->trial) {
    s->trial = false;
    slab.trial_open = false;
  }
  if (s->warming) {
    s->warming = false;
    --slab.warming;
    --warming_here_;
  }
  if (counted) backoff_failed(slab, s, error);
  move_to(s, slot_state::free);
  vacate(s);
  give_back_budget(slab);
  if (closing_) report_if_shut();  // last: once shut, the part may be freed
}

// ---- connect backoff ---------------------------------------------------------------------------

bool pool_core::paced(std::error_code error) const noexcept {
  return cfg.connect_backoff && error != std::errc::operation_canceled &&
         error != errc::pool_closed;
}

bool pool_core::can_wait_for_step(const endpoint_slab& slab,
                                  std::optional<loop_clock::time_point> deadline) const noexcept {
  return deadline && (slab.trial_open || slab.next_open_at <= *deadline);
}

loop_clock::duration pool_core::backoff_delay(std::uint32_t failures) noexcept {
  const connect_backoff_settings& b = *cfg.connect_backoff;
  double d = b.base.count();
  for (std::uint32_t i = 1; i < failures && d < b.cap.count(); ++i) d *= b.factor;
  d = std::min(d, b.cap.count());
  d *= 1 + b.jitter * (2 * random_fraction() - 1);
  return to_loop(std::chrono::duration<double>(d));
}

void pool_core::backoff_failed(endpoint_slab& slab, slot* s, std::error_code error) noexcept {
  slab.last_open_error = error;
  if (!cfg.connect_backoff) return;
  // Opens that were in flight together fail together: one step, not one each.
  if (s->open_epoch != slab.open_epoch) return;
  ++slab.open_failures;
  ++slab.open_epoch;
  slab.next_open_at = loop_now() + backoff_delay(slab.open_failures);
  wake_at(slab.next_open_at);  // waiters and the warm minimum try again then
}

void pool_core::backoff_reset(endpoint_slab& slab) noexcept {
  if (slab.open_failures == 0) return;
  slab.open_failures = 0;
  ++slab.open_epoch;
  serve_waiters(slab);  // those who waited for the step open their own now
}

double pool_core::random_fraction() noexcept {
  // xorshift64*: background timing only (lifetimes, steps, check turns), never security.
  random_state_ ^= random_state_ >> 12;
  random_state_ ^= random_state_ << 25;
  random_state_ ^= random_state_ >> 27;
  return static_cast<double>((random_state_ * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

void pool_core::lend_fresh(slot* s) noexcept {
  move_to(s, slot_state::active);
  bump(s->slab->stats.active);
  begin_lease(s);
}

void pool_core::park(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  if (s->warming) {
    s->warming = false;
    --slab.warming;
    --warming_here_;
  }
  if (closed || slab.draining > 0) {  // opened while the pool (or the slab) closed
    close(s, closed ? close_reason::pool_closed : close_reason::drained);
    return;
  }
  if (s->peer_gone) {  // its server closed it already
    close(s, gone_reason(*s));
    return;
  }
  to_idle(s, loop_now());
  if (slab.waiters_head != nullptr) serve_first_waiter(slab);  // opened while one came
}

void pool_core::relend(endpoint_slab& slab, slot* s) noexcept {
  // The gate: news the kernel holds is applied first (its monitor may have fired); strict mode
  // also asks the kernel.
  if (shard_->kernel_has_news()) [[unlikely]] shard_->catch_up();
  if (s->peer_gone || (strict && !peer_quiet(*s))) {
    close(s, gone_reason(*s));
    return;
  }
  if (slab.waiters_head == nullptr) [[unlikely]] {  // the news served them (a budget freed)
    drop(slab.stats.active);
    to_idle(s, loop_now());
    return;
  }
  // Active (or checking): its waiter counts the use once it resumes with it. It was idle for
  // no time at all (idle_for() of the next lease).
  s->idle_since = loop_now();
  if (checks_health) {
    if (s->state != slot_state::checking) move_to(s, slot_state::checking);
  } else {
    move_to(s, slot_state::active);
  }
  grant(slab, s);
}

void pool_core::grant(endpoint_slab& slab, slot* s) noexcept {
  // Active, but its lease begins when the waiter resumes: until then `lent_at` is the last
  // lease's, which the leak check must not take for this one.
  s->leak_seen = s->lent_at;
  slot_waiter* w = slab.pop_waiter();
  w->granted = s;
  if (w->node != nullptr) w->node->unpark(w);
  shard_core::current().schedule(w->handle);
}

void pool_core::close(slot* s, close_reason why) noexcept {
  endpoint_slab& slab = *s->slab;
  switch (s->state) {
    case slot_state::idle:
      idle_out(slab, s);
      break;
    case slot_state::probing:
      drop(slab.stats.idle);
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
  if (s->warming) {  // opened for the warm minimum after the pool closed
    s->warming = false;
    --slab.warming;
    --warming_here_;
  }
  move_to(s, slot_state::closing);
  count_close(slab, why);
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

void pool_core::count_close(endpoint_slab& slab, close_reason why) noexcept {
  bump(slab.stats.total_closed);
  bump(slab.stats.closed_by[static_cast<std::size_t>(why)]);
  if (why == close_reason::error_in_use) {
    bump(slab.stats.errors);
    bump(slab.stats.errors_by[static_cast<std::size_t>(error_kind::in_use)]);
  }
  if (cfg.on_connection_closed) cfg.on_connection_closed(slab.ep, why);
}

void pool_core::finished(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  s->flow = conpool::flow();  // its socket is closed; this frees a TLS session's memory
  slot_waiter* heir = std::exchange(s->heir, nullptr);
  move_to(s, slot_state::free);
  vacate(s);
  if (heir != nullptr) {
    inherit(slab, heir);
    return;
  }
  give_back_budget(slab);
  // An eviction: warmed again at the next tick, not at once (a server that closes every new
  // connection must not get a reconnect loop at round-trip speed).
  if (cfg.min_idle_per_endpoint > 0) wake_at(loop_now() + sweep_every_);
}

void pool_core::inherit(endpoint_slab& slab, slot_waiter* heir) noexcept {
  if (closed || slab.draining > 0) {
    heir->pool_closed = closed;
    shard_->schedule(heir->handle);
    give_back_budget(slab);
    return;
  }
  ++live_;
  slot* s = slab.take_free();  // the place just freed: the budget never went back
  move_to(s, slot_state::opening);
  bump(slab.stats.opening);
  s->open_epoch = slab.open_epoch;
  s->trial = false;
  heir->granted = s;
  shard_->schedule(heir->handle);
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
  --live_;
  endpoint_slab& slab = *s->slab;
  slab.put_free(s);
  if (--slab.in_use == 0) [[unlikely]] note_unused(slab);
}

loop_clock::time_point pool_core::reclaim_slabs(loop_clock::time_point now) {
  auto next = loop_clock::time_point::max();
  if (reclaim_after_ == loop_clock::duration::zero() || closed) return next;
  std::vector<endpoint_slab*> due;
  for (auto& [ep, slab] : slabs_) {
    if (!slab->unused(now)) {
      slab->unused_since = {};
      continue;
    }
    if (slab->unused_since == loop_clock::time_point{}) slab->unused_since = now;  // first seen
    if (now - slab->unused_since >= reclaim_after_) {
      due.push_back(slab.get());
    } else {
      next = std::min(next, slab->unused_since + reclaim_after_);
    }
  }
  for (endpoint_slab* slab : due) drop_slab(*slab);
  if (shared.table_sweep_due(now)) shared.table.sweep();
  if (now >= next_names_trim_ && names.cached() != 0) {
    forget_names();
    next_names_trim_ = now + reclaim_after_;
  }
  return next;
}

loop_clock::time_point pool_core::find_leaks(loop_clock::time_point now) {
  if (leak_after_ == loop_clock::duration::zero() || closed) return loop_clock::time_point::max();
  auto next = loop_clock::time_point::max();
  struct leak {
    const endpoint* ep;
    loop_clock::duration held;
    loop_clock::time_point lent_at;
  };
  std::vector<leak> found;  // told after the walk: a hook may add endpoints (slabs_)
  for (auto& [ep, slab] : slabs_) {
    if (read(slab->stats.active) == 0) continue;
    // Leases begun on the hit path since this look are seen at the next sweep period.
    next = std::min(next, now + sweep_every_);
    slab->for_each_slot([&](slot& s) {
      if (s.state != slot_state::active || s.leak_seen == s.lent_at) return;
      const auto due = s.lent_at + leak_after_;
      if (now < due) {
        next = std::min(next, due);
        return;
      }
      s.leak_seen = s.lent_at;  // once a lease
      bump(slab->stats.leaks);
      found.push_back({&ep.get(), now - s.lent_at, s.lent_at});
    });
  }
  if (cfg.on_lease_leak) {
    for (const leak& l : found) cfg.on_lease_leak(*l.ep, l.held, l.lent_at);
  }
  return next;
}

void pool_core::drop_slab(endpoint_slab& slab) noexcept {
  endpoint_entry& entry = slab.entry;
  entry.sides[index].slab = nullptr;
  if (last_slab_ == &slab) {
    last_key_ = nullptr;
    last_slab_ = nullptr;
  }
  slabs_.erase(slabs_.find(slab.ep));  // the slab and its key go
  shared.table.unuse(entry);
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
    if (slab->in_use == 0) [[unlikely]] core.note_unused(*slab);
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

void pool_core::peer_spoke(slot* s, std::uint8_t why) noexcept {
  if (!s->peer_gone) s->gone_why = why;  // the first word stands
  s->peer_gone = true;
  if (s->state == slot_state::idle) close(s, gone_reason(*s));
  // Leased, checking or probing: closed when it comes back. Leaving: closed, not sent
  // (settle_slot).
}

namespace {
// What a watcher's completion says the peer did. A zero-length recv completes with 0 for a FIN
// and for bytes alike: a peek tells them apart, but only on a connection nobody uses (a read
// would take the socket's pending error away from a lease).
std::uint8_t spoken(const slot& s, int res) noexcept {
  if (res < 0) return static_cast<std::uint8_t>(of_error(-res));
  if (s.state != slot_state::idle && s.state != slot_state::leaving) {
    return static_cast<std::uint8_t>(close_reason::peer_closed);
  }
  std::byte b{};
  const ssize_t n = ::recv(s.flow.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return static_cast<std::uint8_t>(close_reason::stray_bytes);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    return static_cast<std::uint8_t>(of_error(errno));
  }
  return static_cast<std::uint8_t>(close_reason::peer_closed);
}
}  // namespace

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
        peer_spoke(s, static_cast<std::uint8_t>(v == tls_watch::closed
                                                    ? close_reason::peer_closed
                                                    : close_reason::stray_bytes));
      } else if (s->state == slot_state::idle) {
        tls_remember(*s->slab, s->flow);
        arm_watcher(s);
      }
    } else if (res != -ECANCELED) {
      // Anything but our own cancel is the server speaking up: bytes, FIN or RST on a
      // connection nobody asked it to use, or the kernel giving up on it (keepalive).
      if (s->state != slot_state::closing) peer_spoke(s, spoken(*s, res));
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
    // The poll's events (POLLRDHUP: FIN; POLLERR: a reset or the kernel giving up, which
    // SO_ERROR tells when it closes; POLLHUP alone: reset, its error read already), or an
    // error; -ECANCELED is our own remove.
    if (res != -ECANCELED && s->state != slot_state::closing) {
      std::uint8_t why = static_cast<std::uint8_t>(close_reason::peer_reset);
      if (res >= 0 && (res & POLLERR) != 0) {
        why = error_pending;
      } else if (res >= 0 && (res & POLLHUP) == 0) {
        why = static_cast<std::uint8_t>(close_reason::peer_closed);
      }
      peer_spoke(s, why);
    }
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
        close(s, gone_reason(*s));
      } else {
        sent(s);
      }
    }
  }
  if (closing_) report_if_shut();  // last: once quiet, the part may be freed
}

// ---- the part's timer: expiry, background checks, backoff steps, the warm minimum ------------

namespace {
// A slot's own place in a check interval's last tenth (from its address: stable, spread).
double check_jitter(const slot* s) noexcept {
  const std::uint64_t h = (reinterpret_cast<std::uintptr_t>(s) >> 4) * 0x9e3779b97f4a7c15ULL;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}
}  // namespace

void pool_core::sweep(loop_clock::time_point now) noexcept {
  for (auto& [ep, slab] : slabs_) {
    for (slot* s = slab->idle_top; s != nullptr;) {
      slot* next = s->next;
      if (s->use_count >= max_uses_) {
        close(s, close_reason::max_uses);
      } else if (now > s->expires_at) {
        close(s, close_reason::lifetime_expired);
      } else if (idle_too_long(*s, now)) {
        close(s, close_reason::idle_expired);
      } else if (check_every_ != loop_clock::duration::zero() && probes_running_ < max_probes &&
                 now - std::max(s->idle_since, s->checked_at) >=
                     check_every_ - std::chrono::duration_cast<loop_clock::duration>(
                                        check_every_ * (0.1 * check_jitter(s)))) {
        probe(s);
      }
      s = next;
    }
  }
}

void pool_core::drop_waiter(slot_waiter* w) noexcept {
  w->slab->remove_waiter(w);
  w->slab->core.note_unused(*w->slab);
  if (w->node != nullptr) w->node->unpark(w);
  shard_core::current().schedule(w->handle);
}

loop_clock::time_point pool_core::expire_waiters(loop_clock::time_point now) noexcept {
  auto next = loop_clock::time_point::max();
  for (auto& [ep, slab] : slabs_) {
    // Deadlines mostly rise along the queue (one acquire_timeout for all), but a caller back
    // after a failed open keeps its first one: the whole queue is looked at.
    for (slot_waiter* w = slab->waiters_head; w != nullptr;) {
      slot_waiter* after = w->next;
      if (w->deadline <= now) {
        w->timed_out = true;
        drop_waiter(w);
      } else {
        next = std::min(next, w->deadline);
      }
      w = after;
    }
  }
  return next;
}

void pool_core::tick() noexcept {
  const auto now = loop_now();
  sweep(now);
  const bool named = refresh_names();
  bool idle_left = false;
  auto next = loop_clock::time_point::max();
  for (auto& [ep, slab] : slabs_) {
    if (backing_off(*slab)) {
      if (now >= slab->next_open_at) {
        serve_waiters(*slab);  // the step came: one open
      } else {
        next = std::min(next, slab->next_open_at);
      }
    }
    if (cfg.min_idle_per_endpoint > 0) top_up(*slab);
    if (slab->idle_top != nullptr) idle_left = true;
  }
  // After the steps: a waiter allowed to wait for a step (can_wait_for_step) due with its
  // deadline gets the open, not a timeout.
  next = std::min(next, expire_waiters(now));
  if (idle_left || probes_running_ > 0 || cfg.min_idle_per_endpoint > 0 || named) {
    next = std::min(next, now + sweep_every_);
  }
  // Reclamation and leak checks wake no task: alone, they arm the timer as background.
  const auto reclaim = reclaim_slabs(now);
  const auto quiet = std::min(reclaim, find_leaks(now));
  if (next != loop_clock::time_point::max()) {
    wake_at(std::min(next, quiet));
  } else if (quiet != loop_clock::time_point::max()) {
    wake_at(quiet, true);
  }
}

void pool_core::wake_at(loop_clock::time_point at, bool reclaim_only) noexcept {
  if (closed || timer_.removing) return;
  if (timer_.background && !reclaim_only) {  // now it has a task's work to do too
    timer_.background = false;
    shard_->add_background(-1);
  }
  if (timer_.armed && at >= timer_.due) return;
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(
      at.time_since_epoch());
  timer_.at.tv_sec = since_epoch.count() / 1'000'000'000;
  timer_.at.tv_nsec = since_epoch.count() % 1'000'000'000;
  timer_.due = at;
  io_uring_sqe* sqe = shard_->sqe();
  if (timer_.armed) {
    // Earlier than it is armed for (a backoff step): moved, not added. If it fired meanwhile,
    // the update finds nothing (-ENOENT) and the tick then arms it for what is due.
    io_uring_prep_timeout_update(sqe, &timer_.at, user_data(&timer_, role_main),
                                 IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, user_data(&timer_, role_aux));
  } else {
    // Absolute on CLOCK_MONOTONIC, the steady clock's own.
    io_uring_prep_timeout(sqe, &timer_.at, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, user_data(&timer_, role_main));
    timer_.armed = true;
    if (reclaim_only) {
      timer_.background = true;
      shard_->add_background(1);
    }
  }
  ++outstanding_;
  shard_->expect(1);
}

void pool_core::stop_timer() noexcept {
  if (!timer_.armed || timer_.removing) return;
  timer_.removing = true;
  io_uring_sqe* sqe = shard_->sqe();
  io_uring_prep_timeout_remove(sqe, user_data(&timer_, role_main), 0);
  io_uring_sqe_set_data64(sqe, user_data(&timer_, role_cancel));
  ++outstanding_;
  shard_->expect(1);
}

void pool_core::on_timer(completion* c, unsigned role, int res, unsigned) noexcept {
  pool_core& core = *static_cast<part_timer*>(c)->core;
  --core.outstanding_;
  if (role == role_main) {  // not a remove's or an update's own CQE
    core.timer_.armed = false;
    if (core.timer_.background) {
      core.timer_.background = false;
      core.shard_->add_background(-1);
    }
    if (res == -ETIME && !core.timer_.removing && !core.closed) core.tick();
  }
  if (core.closing_) core.report_if_shut();  // last: once quiet, the part may be freed
}

void pool_core::wait_for_kernel() noexcept {
  stop_timer();
  // Slots and the timer live in this object: wait here until the kernel owes them nothing.
  shard_->wait_for_cqes(outstanding_);
}

// ---- background work ---------------------------------------------------------------------------

namespace {
task<void> forget(std::unique_ptr<pool_shared> owner) {
  owner.reset();  // the pool's shared state, its parts with it
  co_return;
}
}  // namespace

task<void> pool_core::background_fiber(pool_core& core, task<void> t) {
  try {
    co_await std::move(t);
  } catch (...) {
    // Background work has no caller to tell (what it held is given back by its own code).
  }
  --core.background_running_;
  // Whatever comes of it (the pool reported closed, or freed when orphaned) waits for the end
  // of the turn: this fiber's node, under the part, is unlinked by then.
  if (core.background_running_ == 0 && (core.closing_ || core.orphan_)) {
    core.shard_->at_turn_end(&core.background_hook_);
  }
}

void pool_core::background_ended(shard_core::turn_hook* h) noexcept {
  pool_core& core = *static_cast<background_hook*>(h)->core;
  if (core.orphan_) {
    // The pool was destroyed meanwhile: freed from a fiber of its own, next turn (not from a
    // hook: other hooks of this part may still be queued in this turn's list).
    core.shard_->spawn(forget(std::move(core.orphan_)));
    return;
  }
  core.report_if_shut();  // last: once quiet, the part may be freed
}

void pool_core::run_background(task<void> t) {
  ++background_running_;
  shard_->spawn_under(background_, background_fiber(*this, std::move(t)));
}

void pool_core::probe(slot* s) noexcept {
  endpoint_slab& slab = *s->slab;
  idle_out(slab, s);
  bump(slab.stats.idle);  // still idle to the stats: nobody holds it
  bump(slab.stats.probing);  // but not one to give another shard (ask)
  if (s->watcher == kernel_op::armed) unwatch(s);  // the check talks on it
  move_to(s, slot_state::probing);
  ++probes_running_;
  run_background(probe_fiber(s));
}

task<void> pool_core::probe_fiber(slot* s) {
  pool_core& core = s->slab->core;
  bool healthy = false;
  try {
    // No caller's deadline bounds it: connect_timeout does (a check that hangs fails).
    if (core.cfg.connect_timeout) {
      result<bool> r = co_await with_timeout(
          std::chrono::duration_cast<std::chrono::nanoseconds>(*core.cfg.connect_timeout),
          core.cfg.health_check(s->flow));
      healthy = r.has_value() && *r;
    } else {
      healthy = co_await core.cfg.health_check(s->flow);
    }
  } catch (...) {
    healthy = false;  // a check that throws found the connection unusable
  }
  core.probe_done(s, healthy);
}

void pool_core::probe_done(slot* s, bool healthy) noexcept {
  endpoint_slab& slab = *s->slab;
  --probes_running_;
  drop(slab.stats.probing);
  s->checked_at = loop_now();
  if (closed) {
    close(s, close_reason::pool_closed);
  } else if (s->peer_gone) {
    close(s, gone_reason(*s));
  } else if (!healthy) {
    close(s, close_reason::health_check_failed);
  } else if (slab.draining > 0) {
    close(s, close_reason::drained);
  } else {
    drop(slab.stats.idle);     // to_idle counts it again
    to_idle(s, s->idle_since);  // a check is not a use: its idle time runs on
    serve_first_waiter(slab);
  }
}

task<void> pool_core::warm_fiber(slot* s) { (void)co_await open_idle(s); }

void pool_core::top_up(endpoint_slab& slab) noexcept {
  if (closed || slab.draining > 0 || idle_capped()) return;  // the cap wins over the minimum
  while (static_cast<int>(read(slab.stats.idle) + slab.warming) < cfg.min_idle_per_endpoint &&
         static_cast<std::uint64_t>(idle_here_) + warming_here_ < idle_share_) {
    slot* s = take_new(slab);
    if (s == nullptr) return;  // at the limit, or backing off (the timer comes back for it)
    s->warming = true;
    ++slab.warming;
    ++warming_here_;
    run_background(warm_fiber(s));
  }
}

void pool_core::serve_first_waiter(endpoint_slab& slab) noexcept {
  if (slab.waiters_head == nullptr) return;
  slot* s = pop_fit(slab);
  if (s == nullptr) return;  // closed by the gate (past its time): its budget serves them
  (void)lend(s);  // active, or checking: its waiter runs health_check first
  grant(slab, s);
  if (slab.waiters_head != nullptr) ask(slab);  // more waiting: another idle one elsewhere
}

}  // namespace conpool::detail
