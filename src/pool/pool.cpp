// SPDX-License-Identifier: MIT
#include <conpool/pool.hpp>

#include <stdexcept>

#include <conpool/runtime.hpp>
#include <conpool/scope.hpp>

#include "lease_access.hpp"
#include "opening.hpp"
#include "pool_shared.hpp"

namespace conpool {

using detail::endpoint_slab;
using detail::loop_clock;
using detail::loop_now;
using detail::pool_core;
using detail::slot;
using detail::slot_state;
using detail::slot_waiter;

namespace {

// ---- waiting for a slot at the limit ----------------------------------------------------------

void waiter_cancelled(detail::cancel_hook* h) noexcept {
  auto* w = static_cast<slot_waiter*>(h);
  w->cancelled = true;
  pool_core::drop_waiter(w);
}

struct turn_awaiter {
  endpoint_slab& slab;
  slot_waiter& w;
  bool await_ready() const noexcept { return false; }
  template <detail::fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    detail::cancel_node* node = h.promise().node_;
    if (node != nullptr && node->cancelled()) {
      w.cancelled = true;
      return false;
    }
    if (slab.core.closed) {  // closed while this task was on its way here: never queue
      w.pool_closed = true;
      return false;
    }
    if (w.deadline <= loop_now()) {  // no time left to wait
      w.timed_out = true;
      return false;
    }
    w.handle = h;
    w.node = node;
    slab.add_waiter(&w);
    if (node != nullptr) node->park(&w);
    if (w.deadline != loop_clock::time_point::max()) slab.core.wait_until(w.deadline);
    if (slab.bit != 0) {
      detail::shard_core::current().hold();  // another shard may be the one to wake it
      held = true;
      slab.core.on_wait(slab);
    }
    return true;
  }
  void await_resume() const noexcept {
    if (held) detail::shard_core::current().unhold();
  }
  bool held = false;
};

// The next slot the slab frees for this task: a released connection (handed out already) or an
// empty slot to open a connection in; errc::timed_out once `deadline` passed.
task<result<slot*>> wait_turn(endpoint_slab& slab, loop_clock::time_point deadline) {
  slot_waiter w;
  w.request = &waiter_cancelled;
  w.slab = &slab;
  w.deadline = deadline;
  co_await turn_awaiter{slab, w};
  if (w.granted != nullptr) co_return w.granted;
  if (w.pool_closed) co_return fail(errc::pool_closed);
  if (w.timed_out) co_return fail(errc::timed_out);
  co_return fail(std::errc::operation_canceled);
}

struct drained_awaiter {
  detail::drain_waiters& waiters;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { waiters.handles.push_back(h); }
  void await_resume() const noexcept {}
};

// Waits until no connection of `slab` is left (not cancellable: it only waits for leases).
task<void> drained(endpoint_slab& slab) {
  while (slab.in_use != 0) co_await drained_awaiter{slab.drained};
}

}  // namespace

// ---- connection ---------------------------------------------------------------------------------

namespace detail {
void close_abandoned(slot* s) noexcept {
  // Its hold is recorded on its own shard only (a lease dropped elsewhere is a bug the close
  // below does not survive either; the histogram's cells have one writer).
  if (t_current_core == s->slab->core.home()) s->slab->core.end_lease(s);
  s->slab->core.close(s, close_reason::closed_by_user);
}
}  // namespace detail

flow& connection::flow() const noexcept { return slot_->flow; }
const endpoint& connection::endpoint() const noexcept { return slot_->slab->ep; }
std::uint32_t connection::use_count() const noexcept { return slot_->use_count; }
std::chrono::steady_clock::time_point connection::created_at() const noexcept {
  return slot_->created_at;
}
bool connection::reused() const noexcept { return slot_->use_count > 1; }
std::chrono::steady_clock::duration connection::idle_for() const noexcept {
  return reused() ? slot_->lent_at - slot_->idle_since : std::chrono::steady_clock::duration{};
}

// ---- pool ---------------------------------------------------------------------------------------

namespace {
// The runtime winds up its group's services when a run ends: a pool closes.
task<void> wind_up(detail::group_service* s) {
  co_await static_cast<detail::pool_service*>(s)->owner->close_pool();
}
}  // namespace

pool::pool(config settings) {
  settings.validate();
  if (shard::current() == nullptr) {
    throw std::logic_error("conpool::pool: no shard runs on this thread");
  }
  shared_ = std::make_unique<detail::pool_shared>(std::move(settings),
                                                  detail::shard_core::current().group());
  shared_->service.owner = this;
  shared_->service.wind_up = &wind_up;
  shared_->group.add_service(&shared_->service);
  detail::pool_core& mine = shared_->part();
  if (shared_->group.size() == 1) solo_ = &mine;
}

pool::pool(runtime& rt, config settings) : pool(rt.group(), std::move(settings)) {}

pool::pool(shard_group& group, config settings) {
  settings.validate();
  shared_ = std::make_unique<detail::pool_shared>(std::move(settings), *group.impl_);
  shared_->service.owner = this;
  shared_->service.wind_up = &wind_up;
  shared_->group.add_service(&shared_->service);
}

pool::~pool() {
  shared_->group.remove_service(&shared_->service);
  // A pool of one shard, destroyed there with background work running (health checks,
  // warming): the work is cancelled, and the last of it frees the pool (it points into it).
  detail::pool_core* part = shared_->group.size() == 1 ? shared_->part_at(0) : nullptr;
  if (part != nullptr && !part->shut() && part->background_running() != 0 &&
      detail::t_current_core == part->home()) {
    part->orphan(std::move(shared_));
    return;
  }
  shared_.reset();
}

const config& pool::settings() const noexcept { return shared_->cfg; }

// ---- acquiring: the gate's routes --------------------------------------------------------------

namespace detail {

namespace {
// The hit path once the slab is known.
slot* lend_idle(pool_core& core, endpoint_slab& slab) noexcept {
  if (slab.waiters_head != nullptr) return nullptr;  // FIFO: queue behind them
  slot* s = core.pop_fit(slab);
  if (s != nullptr) {
    (void)core.lend(s);  // active: no health check on this path
    core.begin_lease(s);
    core.timings.acquire_wait.record_zero();
  }
  return s;
}
}  // namespace

slot* try_lend(pool_shared& shared, pool_core* solo, const endpoint& ep) {
  pool_core& core = solo != nullptr ? *solo : shared.part();
  if (core.closed || core.checks_health) return nullptr;  // the slow path says why / checks
  return lend_idle(core, core.slab_for(ep));
}

slot* try_lend(pool_shared& shared, pool_core* solo, endpoint_entry& e) {
  pool_core& core = solo != nullptr ? *solo : shared.part();
  if (core.closed || core.checks_health) return nullptr;
  return lend_idle(core, core.slab_for(e));
}

endpoint_entry& handle_access::checked(const endpoint_handle& h, const pool_shared& shared) {
  if (!h) throw std::invalid_argument("conpool: an empty endpoint_handle (make one with pool::handle)");
  endpoint_entry& e = entry(h);
  if (e.owner != &shared) {
    throw std::invalid_argument("conpool: the endpoint_handle of " + e.ep.to_string() +
                                " belongs to another pool");
  }
  return e;
}

}  // namespace detail

namespace {

using detail::lease_access;
using detail::pool_core;

// The gate's last step for a connection in `checking`: config::health_check. Closes it when
// the check says no (or throws), when its peer spoke up meanwhile, or when the pool closed.
task<bool> health_checked(pool_core& core, slot* s) {
  bool healthy = false;
  try {
    healthy = co_await core.cfg.health_check(s->flow);
  } catch (...) {
    healthy = false;  // a check that throws found the connection unusable
  }
  if (healthy && !s->peer_gone && !core.closed) co_return true;
  // Replaced by the caller's next try, unseen by it.
  if (core.closed) {
    core.close(s, close_reason::pool_closed);
  } else if (s->peer_gone) {
    core.close(s, pool_core::gone_reason(*s));
  } else {
    core.close(s, close_reason::health_check_failed);
  }
  co_return false;
}

task<bool> cancelled() {
  detail::cancel_node* node = co_await detail::current_node{};
  co_return node != nullptr && node->cancelled();
}

}  // namespace

namespace detail {

namespace {
// An open failed while its endpoint backs off: the caller waits for the next step (and tries
// again) when its deadline allows.
bool rides_out(const pool_core& core, const endpoint_slab& slab, std::error_code error,
               std::optional<loop_clock::time_point> deadline) noexcept {
  return !core.closed && core.paced(error) && pool_core::backing_off(slab) &&
         core.can_wait_for_step(slab, deadline);
}
}  // namespace

task<result<connection>> acquire_slow(pool_shared& shared, endpoint ep) {
  pool_core& core = shared.part();
  const loop_clock::time_point started = loop_now();
  // A lease got: its wait is recorded (from the call to now).
  const auto leased = [&core, started](result<connection> c) {
    if (c) core.timings.acquire_wait.record(loop_now() - started);
    return c;
  };
  // acquire_timeout bounds the whole wait, however many turns at the limit (or backoff
  // steps) it takes.
  const std::optional<loop_clock::time_point> deadline =
      core.cfg.acquire_timeout
          ? std::optional(loop_now() + std::chrono::duration_cast<loop_clock::duration>(
                                           *core.cfg.acquire_timeout))
          : std::nullopt;
  for (;;) {
    if (core.closed) co_return fail(errc::pool_closed);
    endpoint_slab& slab = core.slab_for(ep);
    slot* s = nullptr;
    if (slab.waiters_head == nullptr && slab.draining == 0) {
      s = core.pop_fit(slab);
      if (s != nullptr) {
        (void)core.lend(s);
      } else if (slot* opening = core.take_new(slab)) {
        result<connection> c = co_await open(opening);
        if (c || !rides_out(core, slab, c.error(), deadline)) co_return leased(std::move(c));
        continue;
      }
    }
    // The endpoint backs off and room is left under its limit: only its next step would give
    // a connection. A caller who cannot wait that long hears the last open's error now.
    if (s == nullptr && pool_core::backing_off(slab) &&
        slab.entry.budget.load(std::memory_order_relaxed) <
            core.cfg.max_connections_per_endpoint &&
        !core.can_wait_for_step(slab, deadline)) {
      co_return fail(slab.last_open_error);
    }
    if (s == nullptr) {
      // The part's one timer ends the wait at its deadline. A kernel that cannot move an armed
      // timeout earlier (before 5.11) gets a timeout of its own for the wait instead.
      // if/else, not ?: — g++ 12 evaluates both arms of a conditional holding co_await.
      result<slot*> turn;
      if (deadline && !detail::shard_core::current().timeout_updates()) {
        turn = co_await with_timeout(
            std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - loop_now()),
            wait_turn(slab, loop_clock::time_point::max()));
      } else {
        turn = co_await wait_turn(slab, deadline.value_or(loop_clock::time_point::max()));
      }
      if (!turn) {
        if (turn.error() == errc::timed_out) {
          bump(slab.stats.acquire_timeouts);
          co_return fail(errc::acquire_timeout);
        }
        co_return fail(turn.error());
      }
      s = *turn;
      if (s->state == slot_state::opening) {
        result<connection> c = co_await open(s);
        if (c || !rides_out(core, slab, c.error(), deadline)) co_return leased(std::move(c));
        continue;
      }
      // Given back here or arrived from another shard: through the gate already. Cancelled
      // between the grant and this resumption: the connection is clean, so it goes back
      // rather than die with a dropped lease.
      if (co_await cancelled()) {
        core.release(s);
        co_return fail(std::errc::operation_canceled);
      }
      // Its server closed or reset it between the grant and now: replaced, unseen.
      if (s->peer_gone) {
        core.close(s, pool_core::gone_reason(*s));
        continue;
      }
    }
    if (s->state == slot_state::active) {
      core.begin_lease(s);
      co_return leased(lease_access::make(s));
    }
    if (co_await health_checked(core, s)) {
      core.passed(s);
      co_return leased(lease_access::make(s));
    }
    // A cancelled caller's check fails at once: stop here rather than close every idle one.
    if (co_await cancelled()) co_return fail(std::errc::operation_canceled);
  }
}

}  // namespace detail

namespace {
using detail::lease_access;
using detail::pool_core;

// Why a lease cannot be given back here (cold: kept out of the release path).
[[noreturn, gnu::noinline, gnu::cold]] void refuse_lease(const slot* s,
                                                       const detail::pool_shared* mine,
                                                       const char* who) {
  std::string why = "empty lease";
  if (s != nullptr && &s->slab->core.shared != mine) {
    why = "the lease belongs to another pool";
  } else if (s != nullptr) {
    why = "the lease belongs to shard " + std::to_string(s->slab->core.index) +
          "; give it back there";
  }
  throw std::invalid_argument(std::string("conpool::pool::") + who + ": " + why);
}

// The slot of a lease given back here, taken out of it; throws when it cannot be given back.
slot* take_lease(connection& c, const detail::pool_shared* mine, const char* who) {
  slot* s = lease_access::peek(c);
  if (s == nullptr || &s->slab->core.shared != mine ||
      s->slab->core.home() != detail::t_current_core) [[unlikely]] {
    refuse_lease(s, mine, who);
  }
  s->slab->core.end_lease(s);
  return lease_access::take(c);
}
}  // namespace

void pool::release(connection&& c) {
  slot* s = take_lease(c, shared_.get(), "release");
  s->slab->core.release(s);
}

void pool::close(connection&& c) {
  slot* s = take_lease(c, shared_.get(), "close");
  s->slab->core.close(s, close_reason::closed_by_user);
}

void detail::close_after_error(connection&& c) noexcept {
  slot* s = lease_access::take(c);
  if (s == nullptr) return;
  s->slab->core.end_lease(s);
  s->slab->core.close(s, close_reason::error_in_use);
}

bool detail::stale_failure(const connection& c, std::uint64_t read_before,
                           std::error_code error) noexcept {
  return c.reused() && c.flow().bytes_read() == read_before &&
         (error == errc::end_of_stream || error == std::errc::connection_reset ||
          error == std::errc::broken_pipe || error == std::errc::connection_aborted);
}

namespace {
// Waits for a closing slot's place (see pool_core::pass_on); not cancellable: the close it
// waits for is the kernel's, a few microseconds (a cancelled caller's open then fails at once).
struct heir_awaiter {
  pool_core& core;
  slot* s;
  slot_waiter& w;
  close_reason why;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    w.handle = h;
    core.pass_on(s, &w, why);
  }
  void await_resume() const noexcept {}
};
}  // namespace

task<result<connection>> detail::reopen_stale(connection&& c, std::error_code error) {
  slot* s = lease_access::take(c);
  pool_core& core = s->slab->core;
  endpoint_slab& slab = *s->slab;
  core.end_lease(s);
  close_reason why = error == errc::end_of_stream || error == std::errc::broken_pipe
                         ? close_reason::peer_closed
                         : close_reason::peer_reset;
  if (s->peer_gone) why = pool_core::gone_reason(*s);
  slot_waiter w;
  w.slab = s->slab;
  co_await heir_awaiter{core, s, w, why};
  if (w.granted != nullptr) {
    result<connection> fresh = co_await open(w.granted);
    if (fresh) bump(slab.stats.retries);  // the callback runs again
    co_return fresh;
  }
  // No new connection now: the pool closed, or close_all_connections drains the endpoint
  // (then the first failure stands).
  co_return fail(w.pool_closed ? make_error_code(errc::pool_closed) : error);
}

namespace {
// Why a lease is not fit to go back (is_healthy's checks, in order); none when it is.
task<std::optional<close_reason>> unfit(slot* s, bool check_readable) {
  pool_core& core = s->slab->core;
  const auto now = detail::loop_now();
  // Idle time is not counted while leased: only lifetime and uses wear a held connection.
  if (s->peer_gone || core.worn_out(*s, now)) co_return core.unfit_reason(*s, now);
  if (core.checks_health && !co_await core.cfg.health_check(s->flow)) {
    co_return close_reason::health_check_failed;
  }
  // The kernel asked once: would block means the peer neither closed nor wrote.
  if (check_readable && !core.peer_quiet(*s)) co_return pool_core::gone_reason(*s);
  co_return std::nullopt;
}
}  // namespace

task<bool> pool::is_healthy(connection& c, bool check_readable) {
  slot* s = lease_access::peek(c);
  if (s == nullptr) co_return false;
  co_return !(co_await unfit(s, check_readable)).has_value();
}

task<void> pool::validate_and_release(connection&& c) {
  connection lease = std::move(c);
  slot* s = lease_access::peek(lease);
  if (s == nullptr) co_return;
  // With the readable probe: the monitor sees a FIN or RST while a connection is out, but not
  // stray bytes, which only this catches before the connection goes back.
  const std::optional<close_reason> why = co_await unfit(s, true);
  if (!why) {
    release(std::move(lease));
  } else {
    s = take_lease(lease, shared_.get(), "validate_and_release");
    s->slab->core.close(s, *why);
  }
}

task<result<void>> pool::warm_endpoint(endpoint ep, int count) {
  detail::pool_core& core = shared_->part();
  if (core.closed) co_return fail(errc::pool_closed);
  endpoint_slab& slab = core.slab_for(ep);
  std::error_code first_error;
  co_await scoped([&](scope& sc) -> task<void> {
    const int wanted = count - static_cast<int>(slab.stats.idle);
    for (int i = 0; i < wanted; ++i) {
      slot* s = core.take_new(slab);
      if (s == nullptr) {  // at the limit, or backing off (then, if nothing opened, it says why)
        if (i == 0 && detail::pool_core::backing_off(slab)) first_error = slab.last_open_error;
        break;
      }
      sc.spawn([](slot* s, std::error_code& first_error) -> task<void> {
        std::error_code e = co_await detail::open_idle(s);
        if (e && !first_error) first_error = e;
      }(s, first_error));
    }
    co_await sc.join();
  });
  if (first_error) co_return fail(first_error);
  co_return result<void>{};
}

std::string pool::last_error(const endpoint& ep) const {
  const endpoint_slab* slab = shared_->part().find(ep);
  return slab == nullptr ? std::string() : slab->last_error;
}

std::string pool::last_error(const endpoint_handle& h) const {
  detail::endpoint_entry& e = detail::handle_access::checked(h, *shared_);
  const endpoint_slab* slab = e.sides[shared_->part().index].slab;
  return slab == nullptr ? std::string() : slab->last_error;
}

endpoint_stats pool::stats(const endpoint& ep) const {
  return shared_->table.stats(ep).value_or(endpoint_stats{});
}

endpoint_stats pool::totals() const { return shared_->table.totals(); }

std::size_t pool::endpoints() const noexcept { return shared_->table.size(); }

endpoint_stats pool::stats(const endpoint_handle& h) const {
  return detail::handle_access::checked(h, *shared_).sum();
}

endpoint_handle pool::handle(const endpoint& ep) {
  detail::pool_core& core = shared_->part();
  // The slab too: a handle's first acquire on this shard is then a hit like any other.
  detail::endpoint_entry& e = core.slab_for(ep).entry;
  e.uses.fetch_add(1, std::memory_order_relaxed);  // listed: this shard's slab uses it
  e.holds.fetch_add(1, std::memory_order_relaxed);
  return detail::handle_access::make(&e);
}

// ---- endpoint_handle: a counted pointer ----------------------------------------------------

const endpoint& endpoint_handle::endpoint() const noexcept { return entry_->ep; }

endpoint_handle::endpoint_handle(const endpoint_handle& o) noexcept : entry_(o.entry_) {
  if (entry_ != nullptr) {
    entry_->uses.fetch_add(1, std::memory_order_relaxed);  // held: it cannot go meanwhile
    entry_->holds.fetch_add(1, std::memory_order_relaxed);
  }
}

endpoint_handle& endpoint_handle::operator=(const endpoint_handle& o) noexcept {
  if (this != &o) {
    endpoint_handle copy(o);
    *this = std::move(copy);
  }
  return *this;
}

endpoint_handle& endpoint_handle::operator=(endpoint_handle&& o) noexcept {
  if (this != &o) {
    reset();
    entry_ = o.entry_;
    o.entry_ = nullptr;
  }
  return *this;
}

endpoint_handle::~endpoint_handle() { reset(); }

void endpoint_handle::reset() noexcept {
  if (entry_ == nullptr) return;
  // The last use gone (no shard holds a slab of it), the table removes the entry; the last
  // hold frees it (the table's, or this one after the pool is gone).
  if (detail::endpoint_table* t = entry_->table.load(std::memory_order_acquire)) {
    t->unuse(*entry_);
  } else {
    entry_->uses.fetch_sub(1, std::memory_order_acq_rel);
  }
  detail::endpoint_entry::drop_hold(entry_);
  entry_ = nullptr;
}

// ---- slab_pin: with_connection's hold on its shard's slab ---------------------------------------

namespace detail {

slab_pin::slab_pin(pool_shared& shared, const endpoint& ep) : slab_(&shared.part().slab_for(ep)) {
  ++slab_->pins;
}

slab_pin::slab_pin(pool_shared& shared, endpoint_entry& e) : slab_(&shared.part().slab_for(e)) {
  ++slab_->pins;
}

slab_pin::~slab_pin() {
  if (slab_ != nullptr) pool_core::unpin(*slab_);
}

endpoint_entry& slab_pin::entry() const noexcept { return slab_->entry; }

const endpoint& handle_access::endpoint_of(const endpoint_entry* e) noexcept { return e->ep; }

}  // namespace detail

std::vector<std::pair<endpoint, endpoint_stats>> pool::all_stats() const {
  return shared_->table.all_stats();
}

void pool::close_idle_connections(const endpoint& ep) {
  detail::pool_core& core = shared_->part();
  if (endpoint_slab* slab = core.find(ep)) core.close_idle(*slab, close_reason::drained);
}

task<void> pool::close_all_connections(endpoint ep) {
  detail::pool_core& core = shared_->part();
  endpoint_slab* slab = core.find(ep);
  if (slab == nullptr) co_return;
  ++slab->draining;
  close_idle_connections(ep);
  co_await drained(*slab);
  --slab->draining;
  core.serve_waiters(*slab);  // those who waited during the drain open connections now
  core.note_unused(*slab);
}

namespace {
struct all_closed_awaiter {
  detail::pool_shared& shared;
  detail::close_waiter w{};
  bool held = false;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    detail::shard_core& here = detail::shard_core::current();
    w.on_cqe = &detail::close_waiter::woken;
    w.handle = h;
    w.shard = here.index();
    if (!shared.wait_closed(w)) return false;
    here.hold();  // woken by whichever shard closes last
    held = true;
    return true;
  }
  void await_resume() const noexcept {
    if (held) detail::shard_core::current().unhold();
  }
};
}  // namespace

task<void> pool::close_pool() {
  shared_->start_close();
  co_await all_closed_awaiter{*shared_};
}

detail::breaker_ticket detail::breaker_enter(pool_shared& shared, const endpoint& ep,
                                             int failure_threshold,
                                             std::chrono::duration<double> open_for) {
  if (failure_threshold < 1) {
    throw std::invalid_argument("conpool::pool::with_circuit_breaker: failure_threshold " +
                                std::to_string(failure_threshold) + " must be at least 1");
  }
  if (!(open_for.count() > 0)) {
    throw std::invalid_argument("conpool::pool::with_circuit_breaker: open_for " +
                                std::to_string(open_for.count()) + " s must be more than 0");
  }
  if (shared.part().closed) return {.refusal = errc::pool_closed};
  endpoint_slab& slab = shared.part().slab_for(ep);
  slab.failure_threshold = failure_threshold;
  const breaker_ticket trial{
      .admitted = true, .trial = true, .generation = slab.breaker_generation};
  switch (slab.breaker) {
    case detail::breaker_state::closed:
      return {.admitted = true, .generation = slab.breaker_generation};
    case detail::breaker_state::open:
      if (detail::loop_now() - slab.opened_at < open_for) return {};
      slab.breaker = detail::breaker_state::half_open;
      slab.trial_in_flight = true;
      return trial;
    case detail::breaker_state::half_open:
      if (slab.trial_in_flight) return {};
      slab.trial_in_flight = true;
      return trial;
  }
  return {};
}

void detail::breaker_record(pool_shared& shared, const endpoint& ep, breaker_ticket t,
                            std::error_code error) {
  endpoint_slab* found = shared.part().find(ep);
  if (found == nullptr) return;
  endpoint_slab& slab = *found;
  if (t.trial) slab.trial_in_flight = false;
  // A result from a call admitted before the breaker last opened says nothing new.
  if (!t.trial && t.generation != slab.breaker_generation) return;
  // Local outcomes are not the endpoint failing.
  if (error == std::errc::operation_canceled || error == errc::pool_closed ||
      error == errc::acquire_timeout) {
    return;
  }
  const bool success = !error;
  if (success) {
    slab.consecutive_failures = 0;
    slab.breaker = detail::breaker_state::closed;
    return;
  }
  ++slab.consecutive_failures;
  if (t.trial || slab.consecutive_failures >= slab.failure_threshold) {
    slab.breaker = detail::breaker_state::open;
    slab.opened_at = detail::loop_now();
    ++slab.breaker_generation;
  }
}

}  // namespace conpool
