// SPDX-License-Identifier: MIT
// Typed work for another shard of a group: a callable travels in a MSG_RING post and runs as a
// task of the target shard's loop; on_shard runs a task there and posts the wake-up back.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include <conpool/shard.hpp>
#include <conpool/shard_group.hpp>

#include "shard_core.hpp"

namespace conpool {
namespace detail {
namespace {

struct posted_work : post_target {
  std::function<void()> fn;
  unsigned to = 0;

  static void arrived(completion* c, unsigned, int res, unsigned) noexcept {
    auto* p = static_cast<posted_work*>(c);
    if (res < 0) {  // it never left: still ours
      shard_core::current().repost(p->to, p, res);
      return;
    }
    std::function<void()> fn = std::move(p->fn);
    delete p;
    // As a task of this loop, not inside the reap: its exception takes the spawned tasks' way.
    shard_core::current().spawn([](std::function<void()> fn) -> task<void> {
      fn();
      co_return;
    }(std::move(fn)));
  }
};

}  // namespace

void run_on_shard(conpool::shard_group& group, unsigned to, std::function<task<void>()> body,
                  std::coroutine_handle<> waiter) {
  shard_core& here = shard_core::current();
  const unsigned from = here.index();
  here.hold();  // the wake-up is due from another shard: no deadlock while it travels
  post(group, to, [body = std::move(body), waiter, from, &group]() mutable {
    shard_core::current().spawn([](std::function<task<void>()> body,
                                   std::coroutine_handle<> waiter, unsigned from,
                                   conpool::shard_group& group) -> task<void> {
      co_await body();
      post(group, from, [waiter] {
        shard_core& back = shard_core::current();
        back.unhold();
        back.schedule(waiter);
      });
    }(std::move(body), waiter, from, group));
  });
}

}  // namespace detail

void post(shard_group& group, unsigned to, std::function<void()> fn) {
  detail::shard_core* here = detail::t_current_core;
  if (here == nullptr || &here->group() != group.impl_.get()) {
    throw std::logic_error("conpool::post: called off the group's shards (call it on one of them)");
  }
  if (to >= group.size()) {
    throw std::invalid_argument("conpool::post: shard " + std::to_string(to) +
                                " is out of the group's range (0 to " +
                                std::to_string(group.size() - 1) + ")");
  }
  auto* p = new detail::posted_work;
  p->fn = std::move(fn);
  p->to = to;
  p->on_cqe = &detail::posted_work::arrived;
  here->post(to, p);
}

}  // namespace conpool
