// SPDX-License-Identifier: MIT
#include <conpool/runtime.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>


#include "shard_core.hpp"

namespace conpool {
namespace {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// The end of a run: a shard whose body is done waits (serving hand-offs) for the others; the
// last one winds up the group's services (its pools close), then lets every shard go.
class run_end {
 public:
  explicit run_end(detail::shard_group& g) : group_(g), signals_(g.size()) {}

  task<void> finish(unsigned i) {
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == group_.size()) {
      for (detail::group_service* s : group_.services()) co_await s->wind_up(s);
      detail::shard_core& here = detail::shard_core::current();
      for (unsigned j = 0; j < group_.size(); ++j) {
        if (j == i) continue;
        signals_[j].to = j;
        here.post(j, &signals_[j]);
      }
      co_return;
    }
    co_await go_signal{signals_[i]};
  }

 private:
  struct signal : detail::post_target {
    signal() noexcept { on_cqe = &signal::arrived; }
    unsigned to = 0;
    std::coroutine_handle<> waiter;
    bool in = false;  // arrived (its shard's thread only)
    static void arrived(detail::completion* c, unsigned, int res, unsigned) noexcept {
      auto* s = static_cast<signal*>(c);
      detail::shard_core& here = detail::shard_core::current();
      if (res < 0) {  // it never left (this runs on the sender)
        here.repost(s->to, s, res);
        return;
      }
      s->in = true;
      if (s->waiter) here.schedule(s->waiter);
    }
  };
  struct go_signal {
    signal& s;
    bool await_ready() const noexcept { return s.in; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      s.waiter = h;
      detail::shard_core::current().hold();
    }
    void await_resume() const noexcept {
      if (s.waiter) detail::shard_core::current().unhold();
    }
  };

  detail::shard_group& group_;
  std::vector<signal> signals_;
  std::atomic<unsigned> done_{0};
};

task<void> shard_main(const std::function<task<void>(unsigned)>& body, unsigned i,
                      std::exception_ptr& error, run_end& end) {
  try {
    co_await body(i);
  } catch (...) {
    error = std::current_exception();
  }
  co_await end.finish(i);
}

}  // namespace

runtime::runtime(runtime_options options) : options_(options) {
  if (options_.shards > detail::max_group_shards) {
    throw std::invalid_argument("conpool::runtime: shards " + std::to_string(options_.shards) +
                                " is more than " + std::to_string(detail::max_group_shards));
  }
  if (options_.shards == 0) {
    const auto n = static_cast<unsigned>(allowed_cpus().size());
    options_.shards = n < detail::max_group_shards ? n : detail::max_group_shards;
  }
  group_ = std::make_unique<shard_group>(options_.shards);
}

runtime::~runtime() {
  if (!group_->impl_->services().empty()) {
    std::fprintf(stderr, "conpool: runtime destroyed before its pools\n");
    std::abort();
  }
}

unsigned runtime::size() const noexcept { return group_->size(); }

int runtime::ring_fd(unsigned i) const noexcept {
  return group_->ring_fd(i);
}

unsigned runtime::shard_index() noexcept {
  return detail::t_current_core == nullptr ? 0 : detail::t_current_core->index();
}

void runtime::run(const std::function<task<void>(unsigned)>& body) {
  const unsigned n = size();
  const std::vector<int> cpus = options_.pin ? allowed_cpus() : std::vector<int>{};
  run_end end(*group_->impl_);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<bool> setup_failed{false};
  std::latch up(n);
  std::latch down(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      if (!cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i % cpus.size()], &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      }
      std::unique_ptr<shard> s;
      try {
        s.reset(new shard(*group_, i, options_.shard));
      } catch (...) {
        errors[i] = std::current_exception();
        setup_failed.store(true);
      }
      up.arrive_and_wait();  // every ring is known before any shard posts to another
      if (s != nullptr && !setup_failed.load()) {
        try {
          s->run(shard_main(body, i, errors[i], end));
        } catch (...) {
          if (!errors[i]) errors[i] = std::current_exception();
        }
      }
      down.arrive_and_wait();  // no ring closes while another shard may still post to it
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace conpool
