// SPDX-License-Identifier: MIT
#pragma once
/// Structured concurrency: `scoped`, `scope` and `when_all`.
///
/// A scope owns the tasks spawned in it: they run concurrently on the shard, and `scoped`
/// returns only after every one of them has finished. When the body of `scoped` returns (or
/// throws), the children still running are cancelled and then joined; to wait for them
/// instead, `co_await s.join()` at the end of the body. The first exception of a child cancels
/// its siblings and is rethrown by `scoped` after the join.
///
/// Example:
///   co_await scoped([&](scope& s) -> task<void> {
///     for (auto& f : flows) s.spawn(echo(f));
///     co_await s.join();
///   });

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <conpool/detail/cancel_node.hpp>
#include <conpool/task.hpp>

namespace conpool {

template <class F>
auto scoped(F body) -> task<typename std::invoke_result_t<F&, class scope&>::value_type>;

class scope {
 public:
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

  /// Starts `t` as a child of this scope; it runs from the next loop turn.
  void spawn(task<void> t);
  /// Cancels the children still running: their pending operations end with operation_canceled.
  void cancel() noexcept { node_.cancel(); }
  /// Children not yet finished.
  [[nodiscard]] std::size_t running() const noexcept { return running_; }

  struct join_awaiter {
    scope& s;
    bool await_ready() const noexcept { return s.running_ == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { s.joiner_ = h; }
    void await_resume() const noexcept {}
  };
  /// Waits until every child has finished (one joiner at a time). It is not cancelled itself:
  /// a cancelled caller's children are cancelled with it, so the join ends soon after.
  join_awaiter join() noexcept { return {*this}; }

 private:
  template <class F>
  friend auto scoped(F body) -> task<typename std::invoke_result_t<F&, scope&>::value_type>;
  friend struct scope_access;

  explicit scope(detail::cancel_node* parent) noexcept : node_(parent) {}
  void rethrow_child_error() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  detail::cancel_node node_;
  std::size_t running_ = 0;
  std::coroutine_handle<> joiner_;
  std::exception_ptr error_;
};

/// Runs `body(scope&)` (a callable giving `task<T>`) with a new scope; see the file comment.
/// Gives the body's value, or rethrows the body's exception, else the first child's.
template <class F>
auto scoped(F body) -> task<typename std::invoke_result_t<F&, scope&>::value_type> {
  using T = typename std::invoke_result_t<F&, scope&>::value_type;
  scope s(co_await detail::current_node{});
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await body(s);
      value.emplace(true);
    } else {
      value.emplace(co_await body(s));
    }
  } catch (...) {
    error = std::current_exception();
  }
  s.cancel();
  co_await s.join();
  if (error) std::rethrow_exception(error);
  s.rethrow_child_error();
  if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

namespace detail {
template <class T>
task<void> store_into(std::optional<T>& slot, task<T> t) {
  slot.emplace(co_await std::move(t));
}
}  // namespace detail

/// Runs every task concurrently and gives their values in order (the seed's Fiber.all). The
/// first exception cancels the others and is rethrown once all have finished.
template <class T>
task<std::vector<T>> when_all(std::vector<task<T>> tasks) {
  std::vector<std::optional<T>> slots(tasks.size());
  co_await scoped([&](scope& s) -> task<void> {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      s.spawn(detail::store_into(slots[i], std::move(tasks[i])));
    }
    co_await s.join();
  });
  std::vector<T> out;
  out.reserve(slots.size());
  for (auto& v : slots) out.push_back(std::move(*v));
  co_return out;
}

/// `when_all` for tasks without a value.
task<void> when_all(std::vector<task<void>> tasks);

}  // namespace conpool
