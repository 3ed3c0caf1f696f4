// SPDX-License-Identifier: MIT
#include <conpool/scope.hpp>

#include <stdexcept>

#include "shard_core.hpp"

namespace conpool {

struct scope_access {
  static detail::cancel_node& node(scope& s) noexcept { return s.node_; }
  static void failed(scope& s, std::exception_ptr e) noexcept {
    if (!s.error_) s.error_ = std::move(e);
    s.cancel();
  }
  static void finished(scope& s) noexcept {
    if (--s.running_ == 0 && s.joiner_) {
      // Scheduled, not resumed: this child's frame (and its node in the scope) is gone before
      // the joiner runs and the scope can end.
      detail::shard_core::current().schedule(std::exchange(s.joiner_, nullptr));
    }
  }
};

namespace {

detail::detached_fiber run_child(scope& s, task<void> t) {
  detail::cancel_node node(&scope_access::node(s));
  detail::task_access::bind(t, &node);
  try {
    co_await std::move(t);
  } catch (...) {
    scope_access::failed(s, std::current_exception());
  }
  scope_access::finished(s);
}

}  // namespace

void scope::spawn(task<void> t) {
  if (!t.valid()) throw std::invalid_argument("conpool::scope::spawn: empty task");
  detail::detached_fiber f = run_child(*this, std::move(t));
  try {
    detail::shard_core::current().schedule(f.handle);
  } catch (...) {
    f.handle.destroy();
    throw;
  }
  ++running_;
}

task<void> when_all(std::vector<task<void>> tasks) {
  co_await scoped([&](scope& s) -> task<void> {
    for (task<void>& t : tasks) s.spawn(std::move(t));
    co_await s.join();
  });
}

}  // namespace conpool
