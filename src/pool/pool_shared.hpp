// SPDX-License-Identifier: MIT
#pragma once
// What the shards of one pool share: the config, the endpoint table, each shard's part (made on
// that shard at its first use), the hand-offs between parts, and closing across shards.
//
// Hand-offs travel with IORING_OP_MSG_RING; the kinds:
//   ask_idle    A -> B  A has waiters and B idle connections: B gives one or answers no_idle
//   connection  B -> A  a connection (its flow, times and uses), sent once B's kernel holds
//                       none of its operations, checked on arrival; within the endpoint budget
//   no_idle     B -> A  nothing to give
//   budget      B -> A  B closed a connection while A waits: A may open one within the budget
//   close_part  A -> B  the pool is closing: B closes its part
// No mutex and no eventfd on this path.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <conpool/config.hpp>
#include <conpool/flow.hpp>

#include "endpoint_table.hpp"
#include "pool_core.hpp"
#include "timings.hpp"

namespace conpool {
class pool;
}

namespace conpool::detail {

enum class handoff_kind : std::uint8_t { ask_idle, connection, no_idle, budget, close_part };

struct handoff : post_target {
  handoff() = default;
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;
  /// Its entry's memory is held while it travels (the entry may leave the table meanwhile).
  ~handoff() {
    if (entry != nullptr) endpoint_entry::drop_hold(entry);
  }
  void carry(endpoint_entry& e) noexcept {
    e.holds.fetch_add(1, std::memory_order_relaxed);
    entry = &e;
  }

  handoff_kind kind = handoff_kind::ask_idle;
  pool_shared* pool = nullptr;
  endpoint_entry* entry = nullptr;  // nullptr for close_part; set by carry
  unsigned from = 0;
  unsigned to = 0;
  // A connection's hand-off: the connection.
  conpool::flow flow;
  loop_clock::time_point created_at{};
  loop_clock::time_point expires_at{};
  loop_clock::time_point idle_since{};
  loop_clock::time_point checked_at{};
  std::uint32_t use_count = 0;
  bool answer = false;  // it answers an ask_idle (the asker may ask again)

  /// Where a handoff's CQE goes: its arrival (res 0) or, on the sender, its failure (res < 0).
  static void arrived(completion* c, unsigned role, int res, unsigned flags) noexcept;
};

/// A task waiting for close_pool to finish on every shard (lives in its frame).
struct close_waiter : post_target {
  std::coroutine_handle<> handle;
  unsigned shard = 0;

  static void woken(completion* c, unsigned role, int res, unsigned flags) noexcept;
};

/// A pool as its group's runtime sees it: something to close when the run ends.
struct pool_service : group_service {
  pool* owner = nullptr;
};

class pool_shared {
 public:
  pool_shared(config c, shard_group& group);
  ~pool_shared();
  pool_shared(const pool_shared&) = delete;
  pool_shared& operator=(const pool_shared&) = delete;

  const config cfg;
  shard_group& group;
  endpoint_table table;
  /// Each shard's duration histograms ([i]: written by shard i only; read by any thread).
  const std::unique_ptr<shard_timings[]> timings;
  pool_service service;  // registered with the group by the pool

  /// The calling shard's part, made on first use. Throws std::logic_error when the calling
  /// thread runs no shard of the pool's group.
  pool_core& part() {
    const shard_core* c = t_current_core;
    if (c != nullptr && &c->group() == &group) [[likely]] {
      if (pool_core* p = parts_[c->index()].get()) [[likely]] return *p;
    }
    return make_part();
  }
  [[nodiscard]] pool_core* part_at(unsigned i) const noexcept { return parts_[i].get(); }
  [[nodiscard]] bool closing() const noexcept { return closing_.load(std::memory_order_acquire); }

  /// Whether the table's sweep for unused entries is due (one shard claims it per
  /// endpoint_idle_timeout).
  bool table_sweep_due(loop_clock::time_point now) noexcept {
    const std::int64_t t = now.time_since_epoch().count();
    std::int64_t due = next_table_sweep_.load(std::memory_order_relaxed);
    if (t < due || !cfg.endpoint_idle_timeout) return false;
    const auto every = std::chrono::duration_cast<loop_clock::duration>(*cfg.endpoint_idle_timeout);
    return next_table_sweep_.compare_exchange_strong(due, t + every.count(),
                                                     std::memory_order_relaxed);
  }
  /// Sends `p` to shard `to` (it arrives there in pool_core::on_handoff).
  void post(handoff* p, unsigned to) noexcept;
  /// A handoff arrived (or a part became quiet while closing): one piece of work less.
  void work_done() noexcept;

  /// close_pool: closes this shard's part and has every other shard close its own.
  void start_close();
  /// Parks `w` until every part is closed and no handoff travels; false when that is so already.
  bool wait_closed(close_waiter& w);

 private:
  pool_core& make_part();
  void all_closed() noexcept;

  std::unique_ptr<std::unique_ptr<pool_core>[]> parts_;  // [i]: written by shard i only
  std::atomic<bool> closing_{false};
  std::atomic<std::int64_t> next_table_sweep_{0};  // loop_clock ticks
  // Hand-offs travelling, plus (once closing) parts not yet quiet: 0 then means all closed.
  std::atomic<std::int64_t> open_work_{0};
  std::atomic<bool> counting_parts_{false};
  std::mutex close_mutex_;  // close_pool's waiters (shutdown only)
  std::vector<close_waiter*> close_waiters_;
  bool closed_ = false;
};

}  // namespace conpool::detail
