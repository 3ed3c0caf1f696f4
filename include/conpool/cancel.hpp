// SPDX-License-Identifier: MIT
#pragma once
/// Deadlines and shields: `with_timeout` and `shield`.
///
/// Cancellation in conpool is structured and result-based: cancelling a fiber (a scope being
/// left, a deadline passing) makes the operation it waits on finish at once with
/// `std::errc::operation_canceled` (through IORING_OP_ASYNC_CANCEL), and every later operation
/// of that fiber fail the same way, so the task unwinds through its own error paths.
///
/// Example:
///   result<std::size_t> n = co_await with_timeout(2s, f.read_some(buf));
///   if (!n && n.error() == errc::timed_out) { ... }
///   co_await shield(pool_release(c));   // runs to the end even if the caller is cancelled

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>

#include <conpool/detail/deadline.hpp>
#include <conpool/error.hpp>
#include <conpool/task.hpp>

namespace conpool {
namespace detail {

template <class T>
struct is_result : std::false_type {};
template <class U>
struct is_result<std::expected<U, std::error_code>> : std::true_type {};

template <class T>
using timeout_result_t = std::conditional_t<is_result<T>::value, T, result<T>>;

}  // namespace detail

/// Runs `t` with a deadline `d` from now. When the deadline passes first, `t`'s fiber is
/// cancelled (its pending operation ends with operation_canceled) and, once `t` has returned,
/// the result is `errc::timed_out` — unless `t` yields a successful `result` anyway.
/// For a `t` giving `result<U>` the type stays `result<U>`; any other `T` becomes `result<T>`.
/// An exception from `t` propagates. The deadline is an io_uring timeout; no thread sleeps.
template <class T>
task<detail::timeout_result_t<T>> with_timeout(std::chrono::nanoseconds d, task<T> t) {
  detail::cancel_node* parent = co_await detail::current_node{};
  detail::deadline timer(parent, d);
  timer.arm();
  detail::task_access::bind(t, &timer.node());
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(t);
    } catch (...) {
      error = std::current_exception();
    }
    co_await timer.disarm();
    if (error) std::rethrow_exception(error);
    if (timer.fired()) co_return fail(errc::timed_out);
    co_return result<void>{};
  } else {
    std::optional<T> value;
    try {
      value.emplace(co_await std::move(t));
    } catch (...) {
      error = std::current_exception();
    }
    co_await timer.disarm();
    if (error) std::rethrow_exception(error);
    if constexpr (detail::is_result<T>::value) {
      if (!value->has_value() && timer.fired()) co_return fail(errc::timed_out);
    } else {
      if (timer.fired()) co_return fail(errc::timed_out);
    }
    co_return std::move(*value);
  }
}

namespace detail {
template <class T>
inline constexpr bool is_task = false;
template <class T>
inline constexpr bool is_task<task<T>> = true;
}  // namespace detail

/// `with_timeout` for another movable awaitable (`pool::acquire(ep)`): it is awaited inside a
/// task run under the deadline. (Operations are immovable: give them their own `op_timeout`.)
template <class A>
requires(!detail::is_task<A>) && std::is_move_constructible_v<A>&& requires(A& a) {
  a.await_resume();
}
auto with_timeout(std::chrono::nanoseconds d, A awaitable) {
  using T = decltype(awaitable.await_resume());
  return with_timeout(d, [](A a) -> task<T> { co_return co_await a; }(std::move(awaitable)));
}

/// Runs `t` where no cancellation reaches it: its operations complete normally even when the
/// caller's fiber is cancelled meanwhile (the caller sees its own cancellation afterwards).
/// For sections that must not be cut in half: returning a connection, closing one.
template <class T>
task<T> shield(task<T> t) {
  detail::cancel_node root(nullptr);
  detail::task_access::bind(t, &root);
  co_return co_await std::move(t);
}

}  // namespace conpool
