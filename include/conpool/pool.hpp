// SPDX-License-Identifier: MIT
#pragma once
/// `pool`: reuses connections per endpoint, checks their health, enforces per-endpoint limits
/// and keeps stats.
///
/// A pool serves the shards of one group: the shard that made it (`pool p;`), or every shard
/// of a `runtime` (`pool p(rt);`, made before `rt.run`). Each shard works on its own part: per
/// endpoint a slab of `max_connections_per_endpoint` slots, idle connections on a stack (the
/// warmest is reused first). Each connection has a POLLRDHUP poll in the kernel for its whole
/// life and each idle one a zero-length recv, so that a server closing, resetting or writing
/// into it is known without a syscall of the pool's own: an idle one is evicted at once, a
/// leased one closed when it comes back. Every route to a lease (the idle stack, a release to a
/// waiter, a connection from another shard, a new one) passes one gate that never lends a
/// connection known to be dead, runs `config::health_check` on every reuse and, with
/// `config::check_on_reuse`, asks the kernel first. Tasks beyond the limit wait in FIFO order on
/// their shard.
///
/// Across shards: `max_connections_per_endpoint` holds for the pool as a whole (a budget taken
/// when a connection opens and given back when it closes, never touched on reuse). A shard at
/// the limit asks a shard holding idle connections for one, and a release with a waiter on
/// another shard hands the connection over, both with IORING_OP_MSG_RING. Fairness: waiters on
/// one shard are served in order; a release with waiters both on its own shard and elsewhere
/// alternates between them, other shards taken round-robin. A lease is used and given back on
/// the shard that acquired it. Stats are kept per shard and summed when read, from any thread.
///
/// Destroying a lone shard's pool closes every connection (all leases must be back by then);
/// background work still running (health checks, warming) is cancelled and the pool freed
/// once it has ended, in the shard's next turns. Use `co_await close_pool()` to wait for
/// leases instead. A runtime's pools are closed when
/// its run ends, and destroyed after it.
///
/// Example:
///   pool p;                                     // on a shard, default_config()
///   endpoint ep{"127.0.0.1", 6379};
///   result<std::string> r = co_await p.with_connection(ep, [](flow& f) ->
///   task<result<std::string>> {
///     if (auto w = co_await f.write_all("PING\r\n"); !w) co_return fail(w.error());
///     std::string pong(7, '\0');
///     if (auto rd = co_await f.read_exact(std::as_writable_bytes(std::span(pong))); !rd)
///       co_return fail(rd.error());
///     co_return pong;
///   });

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <conpool/cancel.hpp>
#include <conpool/config.hpp>
#include <conpool/connection.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/endpoint_handle.hpp>
#include <conpool/error.hpp>
#include <conpool/histogram.hpp>
#include <conpool/stats.hpp>
#include <conpool/task.hpp>

namespace conpool {

class runtime;
class shard_group;

namespace detail {
class pool_core;
class pool_shared;
struct endpoint_entry;
struct slot;

template <class T>
struct lease_value {
  using type = result<T>;
};
template <class U>
struct lease_value<std::expected<U, std::error_code>> {
  using type = std::expected<U, std::error_code>;
};
/// What `with_connection(ep, f)` yields: `f`'s `result<U>`, or `result<T>` for another `T`.
template <class F>
using lease_result_t =
    typename lease_value<typename std::invoke_result_t<F&, flow&>::value_type>::type;

// The pool's inner routes (pool.cpp), kept out of its class.
/// The hit path: an idle connection through the gate, lent; nullptr when the slow path must
/// run (none idle, waiters queued, a health check, the pool closed).
slot* try_lend(pool_shared& shared, pool_core* solo, const endpoint& ep);
/// The same through a handle's entry (no hashing, no string compare).
slot* try_lend(pool_shared& shared, pool_core* solo, endpoint_entry& e);
/// What a handle stands for, and its check against the pool it is used with.
struct handle_access {
  /// A handle adopting a use and a hold of `e` taken by the caller.
  static endpoint_handle make(endpoint_entry* e) noexcept { return endpoint_handle(e); }
  static const endpoint& endpoint_of(const endpoint_entry* e) noexcept;
  static endpoint_entry& entry(const endpoint_handle& h) noexcept { return *h.entry_; }
  /// The handle's entry; throws std::invalid_argument for an empty handle or another pool's.
  static endpoint_entry& checked(const endpoint_handle& h, const pool_shared& shared);
};
/// Everything else: the gate with health_check, a new connection, or a wait at the limit.
task<result<connection>> acquire_slow(pool_shared& shared, endpoint ep);
/// Closes a lease after its user's error.
void close_after_error(connection&& c) noexcept;
/// Whether `error` is a stale reused connection's: the peer had closed or reset it, and no
/// byte was read from it since `read_before`.
bool stale_failure(const connection& c, std::uint64_t read_before, std::error_code error) noexcept;
/// Closes a stale lease (its reason from what the peer did), counts a retry, and opens a new
/// connection in its place (its budget passes on: no wait at the limit, no idle one).
task<result<connection>> reopen_stale(connection&& c, std::error_code error);
/// The circuit breaker's verdict on one call.
struct breaker_ticket {
  bool admitted = false;
  bool trial = false;
  std::uint32_t generation = 0;
  errc refusal = errc::circuit_open;
};
breaker_ticket breaker_enter(pool_shared& shared, const endpoint& ep, int failure_threshold,
                             std::chrono::duration<double> open_for);
void breaker_record(pool_shared& shared, const endpoint& ep, breaker_ticket t,
                    std::error_code error);
class endpoint_slab;
/// `with_connection`'s hold on the calling shard's slab of its endpoint, for the call's whole
/// life: the slab is not reclaimed meanwhile, and the call reaches it as a handle does,
/// without copying the endpoint (no allocation, no atomic). Made, used and destroyed on one
/// shard (tasks do not move between shards).
class slab_pin {
 public:
  slab_pin(pool_shared& shared, const endpoint& ep);
  slab_pin(pool_shared& shared, endpoint_entry& e);
  slab_pin(slab_pin&& o) noexcept : slab_(o.slab_) { o.slab_ = nullptr; }
  slab_pin(const slab_pin&) = delete;
  slab_pin& operator=(const slab_pin&) = delete;
  slab_pin& operator=(slab_pin&&) = delete;
  ~slab_pin();
  [[nodiscard]] endpoint_entry& entry() const noexcept;

 private:
  endpoint_slab* slab_;
};
}  // namespace detail

/// Whether `with_connection` runs its callback once more after a stale reused connection.
enum class stale_retry : bool {
  off,   ///< the callback's errors are the caller's
  /// A callback that failed with a peer-closed error (errc::end_of_stream, connection_reset,
  /// broken_pipe, connection_aborted) on a reused connection before reading any byte of it
  /// runs once more on a new connection (as Go's Transport, Envoy and Pingora retry). Only
  /// for requests that are safe to send twice (idempotent): the first may have reached the
  /// server before it closed. The new connection opens in the stale one's place (no wait at
  /// the limit), not paced by `connect_backoff` (it replaces a connection that worked).
  once,
};

class pool {
 public:
  /// A pool on the calling thread's shard (and, if that shard is one of a runtime's, on its
  /// other shards too). Throws std::invalid_argument naming a bad `config` field,
  /// std::logic_error when this thread runs no shard.
  explicit pool(config settings = default_config());
  /// A pool for every shard of `rt`, made on any thread before `rt.run`; `rt` must outlive it.
  /// Throws std::invalid_argument naming a bad `config` field.
  explicit pool(runtime& rt, config settings = default_config());
  /// A pool for every shard of a host-owned `group`, made on any thread before its shards use
  /// it; `group` must outlive it (see shard_group.hpp). Throws std::invalid_argument naming a
  /// bad `config` field.
  explicit pool(shard_group& group, config settings = default_config());
  /// Closes every connection at once (with background work running: once it has ended, in the
  /// shard's next turns); leases still out abort the program (a bug: they would
  /// outlive their pool), and so does a part still open on another shard (close_pool first).
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  class [[nodiscard]] acquire_awaiter;

  /// A connection to `ep`: the warmest healthy idle one (no allocation, no syscall, no frame),
  /// else a new one, else — at the limit — the next one released, in FIFO order. One that fails
  /// the gate (its peer closed, reset or wrote; lifetime, idle time or uses spent;
  /// health_check; in strict mode the kernel's answer) is closed and replaced without the caller
  /// seeing an error. Awaitable (`co_await p.acquire(ep)`); `ep`
  /// must outlive the await.
  /// Errors: errc::pool_closed, errc::acquire_timeout, errc::connect_timeout,
  /// errc::resolve_failed, the system's connect errors, operation_canceled.
  /// Throws std::invalid_argument for a bad endpoint (empty host, port 0, TLS without a
  /// context), before any I/O.
  acquire_awaiter acquire(const endpoint& ep);

  /// `acquire` through a handle of this pool (see endpoint_handle.hpp): the hit path makes
  /// no hash and no string compare. Throws std::invalid_argument for an empty handle or one of
  /// another pool.
  acquire_awaiter acquire(const endpoint_handle& h);

  /// `ep` interned: a handle for `acquire`, `with_connection`, `stats` and `last_error`, valid
  /// while the pool is. Call it on a shard of the pool. Throws std::invalid_argument for a bad
  /// endpoint (as `acquire`).
  [[nodiscard]] endpoint_handle handle(const endpoint& ep);

  /// Returns a connection in a clean state: to the longest waiter (through the gate), else to
  /// the idle stack. Closed instead when its lifetime or uses are spent, when its server closed
  /// or reset it while it was out, or when the pool is closing. Throws std::invalid_argument for
  /// an empty lease or one of another pool.
  void release(connection&& c);
  /// Closes a connection now.
  void close(connection&& c);
  /// Lifetime and uses (idle time does not run while leased), the server not having closed or
  /// reset it, then `health_check` and, with `check_readable`, one recv(MSG_PEEK |
  /// MSG_DONTWAIT) syscall (healthy when it would block: no FIN, RST or stray bytes).
  task<bool> is_healthy(connection& c, bool check_readable = false);
  /// `is_healthy(c, true)` ? `release(c)` : `close(c)` (with the readable probe: a server that
  /// closed while the connection was out is caught before it goes back).
  task<void> validate_and_release(connection&& c);

  /// Acquires a connection, runs `f(flow&)` (a callable giving `task<R>`), then: success
  /// returns the connection to the pool; an error result, or an exception, closes it (the
  /// exception is rethrown). Yields `f`'s `result<U>`, or `result<R>` for another `R`.
  /// With `stale_retry::once`, an error result that shows the reused connection was stale
  /// runs `f` again on a new connection (counted in `endpoint_stats::retries`); the second
  /// run's result is the caller's. `f` is called as an lvalue, once or twice.
  /// g++ 12: pass a named callable, or a lambda capturing by reference, not a lambda with
  /// by-value captures built inside the `co_await` expression (see task.hpp).
  /// The endpoint is not copied (no allocation, no atomic): the call holds this shard's slab
  /// of it until it ends, so call it on a shard of the pool; `ep` need not outlive the call.
  /// Throws std::invalid_argument for a bad endpoint, at the call.
  template <class F>
  task<detail::lease_result_t<F>> with_connection(const endpoint& ep, F f,
                                                  stale_retry retry = stale_retry::off) {
    return lease_and_run(detail::slab_pin(*shared_, ep), std::move(f), retry);
  }
  /// The same through a handle (no lookup; the handle need not outlive the call).
  template <class F>
  task<detail::lease_result_t<F>> with_connection(const endpoint_handle& h, F f,
                                                  stale_retry retry = stale_retry::off) {
    return lease_and_run(detail::slab_pin(*shared_, detail::handle_access::checked(h, *shared_)),
                         std::move(f), retry);
  }

  /// `with_connection` behind a circuit breaker per endpoint: after `failure_threshold` failures
  /// in a row it opens and fails at once with errc::circuit_open for `open_for`; then one trial
  /// goes through (half-open): success closes it, failure opens it again.
  /// Throws std::invalid_argument when failure_threshold < 1 or open_for <= 0.
  template <class F>
  task<detail::lease_result_t<F>> with_circuit_breaker(endpoint ep, int failure_threshold,
                                                       std::chrono::duration<double> open_for, F f);

  /// Replaces a lease whose reused connection turned out stale (`error`, from its first write
  /// or read, says its server had closed or reset it): closes it and opens a new connection in
  /// its place, without a wait at the limit (its budget passes on), counted as a retry. For
  /// callers that manage leases themselves, such as a proxy sending an idempotent request once
  /// more; `with_connection(..., stale_retry::once)` does it for a callback. Errors: as
  /// acquire's open. Call it on the lease's shard.
  task<result<connection>> reopen_stale(connection&& c, std::error_code error) {
    return detail::reopen_stale(std::move(c), error);
  }

  /// Opens connections to `ep` until `count` are idle (within the limit). Errors: as acquire.
  task<result<void>> warm_endpoint(endpoint ep, int count);

  /// The stats of `ep`, summed over the shards (zeros if the pool never used it). Any thread,
  /// without locks and without stopping the shards: each shard's counters are read as of its
  /// own moment, so while connections move between shards `active` and `idle` may be off by
  /// the ones in hand-over; the totals never go back.
  [[nodiscard]] endpoint_stats stats(const endpoint& ep) const;
  /// The same through a handle (no lookup).
  [[nodiscard]] endpoint_stats stats(const endpoint_handle& h) const;
  /// The last failure on this shard to open a connection to `ep`, in words naming the endpoint,
  /// with the TLS library's reason for TLS failures: "127.0.0.1:8443 (tls): TLS peer
  /// verification failed: ASN date error, current date after". Empty when none.
  /// Call it on a shard of the pool (it reads that shard's part without a lock); elsewhere it
  /// throws std::logic_error. `stats` and `all_stats` work from any thread.
  [[nodiscard]] std::string last_error(const endpoint& ep) const;
  /// The same through a handle.
  [[nodiscard]] std::string last_error(const endpoint_handle& h) const;
  /// The stats of every endpoint the pool has used, summed over the shards. Any thread, as
  /// `stats`.
  [[nodiscard]] std::vector<std::pair<endpoint, endpoint_stats>> all_stats() const;

  /// Every endpoint's stats summed, those the pool has reclaimed (config::endpoint_idle_timeout)
  /// included, with their totals as they were when they went. Any thread; it waits for a
  /// reclamation in progress (one walk over the endpoints).
  [[nodiscard]] endpoint_stats totals() const;
  /// Endpoints the pool holds now (used, or held by a handle, and not reclaimed). Any thread.
  [[nodiscard]] std::size_t endpoints() const noexcept;
  /// Shards the pool spans (its group's).
  [[nodiscard]] std::size_t shards() const noexcept;
  /// The pool's duration histograms (connect, acquire wait, lease hold), summed over its
  /// shards and endpoints. Any thread, without locks (each shard's buckets as of its own
  /// moment). Durations are read on the loop's clock, once a turn: a hit waits 0.
  /// Recording costs the hit path about a nanosecond: plain stores to this shard's buckets.
  /// For a `/metrics` page see metrics.hpp.
  [[nodiscard]] pool_histograms histograms() const;

  /// Closes this shard's idle connections of `ep`; leased ones are untouched.
  void close_idle_connections(const endpoint& ep);
  /// Closes this shard's connections of `ep`: idle ones now, leased ones as they come back
  /// (waits).
  task<void> close_all_connections(endpoint ep);
  /// Closes the pool on every shard: waiters and new acquisitions get errc::pool_closed, idle
  /// connections close now, leased ones as they come back (on their own shards); returns when
  /// every shard's part is closed. Not cancellable.
  task<void> close_pool();

  /// The settings the pool runs with.
  [[nodiscard]] const config& settings() const noexcept;

 private:
  // with_connection's body, on a pinned slab.
  template <class F>
  task<detail::lease_result_t<F>> lease_and_run(detail::slab_pin pin, F f, stale_retry retry);

  std::unique_ptr<detail::pool_shared> shared_;
  detail::pool_core* solo_ = nullptr;  // a lone shard's part: the hit path's shortcut
};

class [[nodiscard]] pool::acquire_awaiter {
 public:
  bool await_ready() {
    hit_ = entry_ != nullptr ? detail::try_lend(*pool_->shared_, pool_->solo_, *entry_)
                             : detail::try_lend(*pool_->shared_, pool_->solo_, *ep_);
    return hit_ != nullptr;
  }
  template <detail::fiber_promise P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    slow_ = detail::acquire_slow(*pool_->shared_, ep_ != nullptr ? *ep_ : entry_endpoint());
    return slow_awaiter().await_suspend(h);
  }
  result<connection> await_resume() {
    if (hit_ != nullptr) return connection(hit_);
    return slow_awaiter().await_resume();
  }

 private:
  friend class pool;
  acquire_awaiter(pool& p, const endpoint& ep) noexcept : pool_(&p), ep_(&ep) {}
  acquire_awaiter(pool& p, detail::endpoint_entry& e) noexcept : pool_(&p), entry_(&e) {}
  task<result<connection>>::awaiter slow_awaiter() noexcept {
    return {detail::task_access::handle(slow_)};
  }
  const endpoint& entry_endpoint() const noexcept {
    return detail::handle_access::endpoint_of(entry_);
  }
  pool* pool_;
  const endpoint* ep_ = nullptr;              // acquire(endpoint): the caller's
  detail::endpoint_entry* entry_ = nullptr;  // acquire(handle)
  detail::slot* hit_ = nullptr;
  task<result<connection>> slow_;
};

inline pool::acquire_awaiter pool::acquire(const endpoint& ep) { return {*this, ep}; }
inline pool::acquire_awaiter pool::acquire(const endpoint_handle& h) {
  return {*this, detail::handle_access::checked(h, *shared_)};
}

template <class F>
task<detail::lease_result_t<F>> pool::lease_and_run(detail::slab_pin pin, F f, stale_retry retry) {
  using R = typename std::invoke_result_t<F&, flow&>::value_type;
  result<connection> c = co_await acquire_awaiter(*this, pin.entry());
  if (!c) co_return fail(c.error());
  for (bool may_retry = retry == stale_retry::once;; may_retry = false) {
    try {
      if constexpr (std::is_void_v<R>) {
        co_await f(c->flow());
        release(std::move(*c));
        co_return result<void>{};
      } else {
        const std::uint64_t read_before = c->flow().bytes_read();
        R r = co_await f(c->flow());
        if constexpr (detail::is_result<R>::value) {
          if (r.has_value()) {
            release(std::move(*c));
            co_return r;
          }
          if (!may_retry || !detail::stale_failure(*c, read_before, r.error())) {
            detail::close_after_error(std::move(*c));
            co_return r;
          }
          c = co_await detail::reopen_stale(std::move(*c), r.error());
          if (!c) co_return fail(c.error());
        } else {
          release(std::move(*c));
          co_return std::move(r);
        }
      }
    } catch (...) {
      detail::close_after_error(std::move(*c));
      throw;
    }
  }
}

template <class F>
task<detail::lease_result_t<F>> pool::with_circuit_breaker(endpoint ep, int failure_threshold,
                                                           std::chrono::duration<double> open_for,
                                                           F f) {
  const detail::breaker_ticket ticket =
      detail::breaker_enter(*shared_, ep, failure_threshold, open_for);
  const endpoint key = ep;
  if (!ticket.admitted) co_return fail(ticket.refusal);
  try {
    // Built apart from the co_await: g++ 12 destroys a callable moved inside a co_await
    // expression twice (see task.hpp).
    task<detail::lease_result_t<F>> inner = with_connection(std::move(ep), std::move(f));
    detail::lease_result_t<F> r = co_await std::move(inner);
    detail::breaker_record(*shared_, key, ticket, r.has_value() ? std::error_code{} : r.error());
    co_return r;
  } catch (...) {
    detail::breaker_record(*shared_, key, ticket, make_error_code(errc::unhealthy));
    throw;
  }
}

}  // namespace conpool
