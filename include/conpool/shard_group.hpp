// SPDX-License-Identifier: MIT
#pragma once
/// `shard_group`: shards that work together, on threads the host owns.
///
/// A shard-per-core server keeps its own threads and loops: each thread makes shard i of the
/// group (`shard s(group, i)`) and drives it with `run` or with its own loop (`notify_fd()` +
/// `poll()`). One `pool p(group, cfg)` then serves every shard of the group, as it does a
/// `runtime`'s: the per-endpoint limit holds across the shards, connections move between them
/// over IORING_OP_MSG_RING, stats are read from any thread.
///
/// The host's part, as a `runtime` does it for its own threads:
/// - every shard of the group is made before any of them uses a pool of the group (a barrier
///   after the shards are made: a hand-off may go to any of them);
/// - the pools are closed (`co_await p.close_pool()` on one shard, the others still driving
///   their loops until it returns) before any shard is destroyed, and no shard is destroyed
///   while another may still post to it (a barrier before the shards go);
/// - the group outlives its shards and pools.
///
/// Example:
///   conpool::shard_group group(3);
///   conpool::pool p(group, cfg);
///   // on host thread i:
///   conpool::shard s(group, i);
///   up.arrive_and_wait();
///   s.spawn(serve(p));
///   epoll_ctl(efd, EPOLL_CTL_ADD, s.notify_fd(), &ev);
///   while (running) { epoll_wait(efd, events, 8, -1); s.poll(); }
///
/// Work for another shard of the group, typed (IORING_OP_MSG_RING underneath):
///   post(group, 2, [&] { counters[2].reset(); });          // runs on shard 2's thread
///   int n = co_await on_shard(group, 2, [&]() -> task<int> { co_return co_await count(); });

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <conpool/task.hpp>

namespace conpool {

namespace detail {
class shard_group;
}

class shard_group {
 public:
  /// A group of `size` shards (1 to 64). Throws std::invalid_argument naming the size.
  explicit shard_group(unsigned size);
  /// Its shards and pools must be gone by then (aborts otherwise: they would point at it).
  ~shard_group();
  shard_group(const shard_group&) = delete;
  shard_group& operator=(const shard_group&) = delete;

  /// The number of shards.
  [[nodiscard]] unsigned size() const noexcept;
  /// Shard `i`'s ring (the target of `io::msg_send`), or -1 while shard `i` is not up.
  [[nodiscard]] int ring_fd(unsigned i) const noexcept;

 private:
  friend class shard;
  friend class pool;
  friend class runtime;
  friend void post(shard_group& group, unsigned to, std::function<void()> fn);
  std::unique_ptr<detail::shard_group> impl_;
};

/// Runs `fn()` on shard `to` of `group`, in a task of that shard's loop, soon; the caller goes on
/// at once. Call it on a shard of the group (its own index included). `fn` may spawn tasks
/// there; an exception it throws is rethrown by that shard's `run` or `poll`, like a spawned
/// task's. Throws std::logic_error off the group's shards, std::invalid_argument for a `to` out
/// of range.
void post(shard_group& group, unsigned to, std::function<void()> fn);

namespace detail {
/// Runs `body()` as a task on shard `to`, then resumes `waiter` on the calling shard.
void run_on_shard(conpool::shard_group& group, unsigned to, std::function<task<void>()> body,
                  std::coroutine_handle<> waiter);
struct hop_awaiter {
  conpool::shard_group& group;
  unsigned to;
  std::function<task<void>()> body;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { run_on_shard(group, to, std::move(body), h); }
  void await_resume() const noexcept {}
};
}  // namespace detail

/// Runs `make()` (a callable giving a `task<T>`) on shard `to` of `group` and gives its value
/// to the awaiting task, back on its own shard (or rethrows its exception there). The task
/// made runs entirely on shard `to`; what it captures by reference is read there, so it must
/// be safe to touch from that thread. The wait is not cancellable (the work runs elsewhere).
/// Call it on a shard of the group; errors as `post`.
template <class F>
task<typename std::invoke_result_t<F&>::value_type> on_shard(shard_group& group, unsigned to,
                                                             F make) {
  using T = typename std::invoke_result_t<F&>::value_type;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  std::exception_ptr error;
  std::function<task<void>()> body = [&]() -> task<void> {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await make();
        value.emplace(true);
      } else {
        value.emplace(co_await make());
      }
    } catch (...) {
      error = std::current_exception();
    }
  };
  // Bound to a variable: g++ 12 destroys temporaries of a co_await expression twice.
  detail::hop_awaiter hop{group, to, std::move(body)};
  co_await hop;
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

}  // namespace conpool
