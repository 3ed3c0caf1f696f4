// SPDX-License-Identifier: MIT
#pragma once
/// `task<T>`: conpool's coroutine type.
///
/// A task is lazy: calling a coroutine that returns `task<T>` allocates its frame (from the
/// shard's frame allocator) and runs nothing. It runs when awaited (`co_await f()`), which
/// hands control to it by symmetric transfer; when it finishes, the awaiter resumes the same
/// way. Chains of tasks never grow the stack, in Debug builds too: every 64th transfer goes
/// through the shard's resume loop rather than a tail call the compiler may not make. An exception thrown inside a task propagates
/// to whoever awaits it. A task owns its frame: destroying a task that never ran frees it.
/// A task is awaited at most once, as an rvalue.
///
/// g++ 12 (Debian 12's compiler) destroys twice a temporary lambda that has by-value captures
/// when it stands in the same expression as `co_await` (a known g++ bug, fixed in g++ 13):
/// write `co_await p.with_connection(ep, [&msg](flow& f) {...})` (capture by reference), or
/// bind the lambda to a variable first, never `[msg](flow& f) {...}` inside the co_await.
///
/// Example:
///   task<int> answer() { co_return 42; }
///   task<int> twice() { int a = co_await answer(); co_return 2 * a; }
///   int v = shard{}.run(twice());   // 84

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <conpool/detail/promise_base.hpp>

namespace conpool {

template <class T = void>
class task;

namespace detail {

template <class T>
class task_promise_storage : public promise_base {
 public:
  void return_value(T v) noexcept(std::is_nothrow_move_constructible_v<T>) {
    value_.emplace(std::move(v));
  }
  T take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 protected:
  std::optional<T> value_;
  std::exception_ptr error_;
};

template <>
class task_promise_storage<void> : public promise_base {
 public:
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(error_);
  }

 protected:
  std::exception_ptr error_;
};

template <class T>
class task_promise final : public task_promise_storage<T> {
 public:
  task<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<task_promise> h) noexcept {
      return transfer(h.promise().continuation_);  // see promise_base.hpp
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { this->error_ = std::current_exception(); }
};

/// What conpool's own machinery (shard, scope, deadlines) needs of a task beyond co_await.
struct task_access;

}  // namespace detail

/// A lazy coroutine producing a `T` (or an exception). See the file comment.
template <class T>
class [[nodiscard]] task {
  static_assert(!std::is_reference_v<T>, "task<T&> is not supported: return a pointer");

 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  /// True when the task holds a coroutine (not default-constructed or moved-from).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }

  struct awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    template <detail::fiber_promise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      promise_type& p = h.promise();
      p.continuation_ = parent;
      if (p.node_ == nullptr) p.node_ = parent.promise().node_;
      return detail::transfer(h);
    }
    T await_resume() { return h.promise().take(); }
  };
  /// Runs the task and gives its value (or rethrows its exception). One shot: rvalues only.
  awaiter operator co_await() && noexcept { return awaiter{h_}; }

 private:
  friend class detail::task_promise<T>;
  friend struct detail::task_access;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}

struct task_access {
  /// Makes `t` run in fiber `node` instead of its awaiter's.
  template <class T>
  static void bind(task<T>& t, cancel_node* node) noexcept {
    t.h_.promise().node_ = node;
  }
  template <class T>
  static std::coroutine_handle<task_promise<T>> handle(task<T>& t) noexcept {
    return t.h_;
  }
  /// Lets go of the frame without destroying it.
  template <class T>
  static void leak(task<T>& t) noexcept {
    t.h_ = nullptr;
  }
};

}  // namespace detail
}  // namespace conpool
