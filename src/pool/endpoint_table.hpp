// SPDX-License-Identifier: MIT
#pragma once
// What the shards of a pool share per endpoint, and the table that finds it.
//
// An entry holds the endpoint's connection budget (exact across shards: taken when a connection
// is opened, given back when it is closed, untouched on reuse), the shards waiting for one of
// its connections, and one line of stats per shard (written by that shard alone, with plain
// loads and stores; summed by whoever reads them).
//
// The table is read-mostly: a snapshot (endpoint -> entry) behind an atomic pointer, replaced
// by a copy when an endpoint is added. An old snapshot is freed once every shard of the group
// has passed a quiescent point (a loop turn, or a wait in the kernel) since it was replaced
// (QSBR), and no thread outside the group is reading it. Entries live as long as the pool.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <conpool/endpoint.hpp>
#include <conpool/stats.hpp>

#include "shard_group.hpp"

namespace conpool::detail {

class endpoint_slab;

/// Counters of one endpoint on one shard. Only that shard writes them: a relaxed load and
/// store (no read-modify-write), readable from any thread.
struct alignas(64) shard_stats {
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> idle{0};
  std::atomic<std::uint64_t> total_created{0};
  std::atomic<std::uint64_t> total_reused{0};
  std::atomic<std::uint64_t> total_closed{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> probing{0};  // of `idle`: in a background health check
  // Not a stat: this shard's slab of the endpoint once made (only this shard reads or writes
  // it): a handle's way to the slab, one load on the line the hit path writes anyway.
  endpoint_slab* slab = nullptr;
  // Cold: written on a close, after the hot gauges' line.
  std::atomic<std::uint64_t> closed_by[close_reason_count]{};
};

inline void bump(std::atomic<std::uint64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
inline void drop(std::atomic<std::uint64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}
inline std::uint64_t read(const std::atomic<std::uint64_t>& c) noexcept {
  return c.load(std::memory_order_relaxed);
}

struct endpoint_entry {
  endpoint_entry(endpoint e, unsigned shards, const void* pool)
      : ep(std::move(e)), owner(pool), sides(new shard_stats[shards]), shard_count(shards) {}

  const endpoint ep;
  const void* const owner;  // the pool_shared whose table holds it (handles check it)
  /// Connections of this endpoint alive on any shard or travelling between two (opening
  /// included): at most max_connections_per_endpoint.
  alignas(64) std::atomic<int> budget{0};
  /// Bit i: shard i has tasks waiting for a connection of this endpoint.
  alignas(64) std::atomic<std::uint64_t> waiting{0};
  std::unique_ptr<shard_stats[]> sides;
  const unsigned shard_count;

  /// The shards' stats summed.
  [[nodiscard]] endpoint_stats sum() const noexcept;
};

class endpoint_table {
 public:
  /// The table of the pool whose shared state is `owner`.
  endpoint_table(shard_group& group, const void* owner);
  ~endpoint_table();
  endpoint_table(const endpoint_table&) = delete;
  endpoint_table& operator=(const endpoint_table&) = delete;

  /// The entry of `ep`, added on first use (a new snapshot). Called on a shard of the group.
  endpoint_entry& intern(const endpoint& ep);
  /// The entry of `ep`, or nullptr. Any thread.
  [[nodiscard]] const endpoint_entry* find(const endpoint& ep) const noexcept;
  /// Every endpoint with its shards' stats summed. Any thread, without locks: the shards go on.
  [[nodiscard]] std::vector<std::pair<endpoint, endpoint_stats>> all_stats() const;
  /// Snapshots not freed yet, the current one included (tests watch reclamation).
  [[nodiscard]] std::size_t snapshots_alive() const;

 private:
  struct snapshot {
    std::unordered_map<endpoint, endpoint_entry*> index;
    std::vector<endpoint_entry*> order;  // as added
  };
  struct retired {
    const snapshot* old;
    std::vector<std::uint64_t> marks;  // the shards' quiescent counters when it was replaced
  };
  // Readers on a shard of the group are covered by its quiescent states; others are counted.
  class read_guard;
  void reclaim();  // under writer_

  shard_group& group_;
  const void* owner_;
  std::atomic<const snapshot*> current_;
  mutable std::atomic<std::uint64_t> outside_readers_{0};
  mutable std::mutex writer_;  // adding an endpoint (rare): one writer at a time
  std::vector<retired> retired_;
  std::vector<std::unique_ptr<endpoint_entry>> entries_;
};

}  // namespace conpool::detail
