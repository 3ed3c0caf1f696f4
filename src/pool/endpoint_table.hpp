// SPDX-License-Identifier: MIT
#pragma once
// What the shards of a pool share per endpoint, and the table that finds it.
//
// An entry holds the endpoint's connection budget (exact across shards: taken when a connection
// is opened, given back when it is closed, untouched on reuse), the shards waiting for one of
// its connections, and one line of stats per shard (written by that shard alone, with plain
// loads and stores; summed by whoever reads them).
//
// The table is a hash table read without locks (RCU): buckets of immutable chains behind an
// atomic pointer. Adding an endpoint (one writer at a time) prepends a node to its chain; when
// the table is fuller than one node a bucket it is rebuilt at twice the size and published, the
// old array and its nodes freed once every shard of the group has passed a quiescent point (a
// loop turn, or a wait in the kernel) since (QSBR), and no thread outside the group reads it.
// Adding is amortised O(1), not a copy of every entry. Entries, in the order they were added,
// also sit in an append-only list of chunks that never move (for `all_stats`). Entries live as
// long as the pool.

#include <atomic>
#include <cstdint>
#include <deque>
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
  // Not a stat: this shard's slab of the endpoint once made (only this shard reads or writes
  // it): a handle's way to the slab, one load on the line the hit path writes anyway.
  endpoint_slab* slab = nullptr;
  // Cold: written on a probe or a close, after the hot line.
  std::atomic<std::uint64_t> probing{0};  // of `idle`: in a background health check
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

  /// The entry of `ep`, added on first use. Called on a shard of the group.
  endpoint_entry& intern(const endpoint& ep);
  /// The entry of `ep`, or nullptr. Any thread.
  [[nodiscard]] const endpoint_entry* find(const endpoint& ep) const noexcept;
  /// Every endpoint with its shards' stats summed, in the order they were added. Any thread,
  /// without locks: the shards go on.
  [[nodiscard]] std::vector<std::pair<endpoint, endpoint_stats>> all_stats() const;
  /// Bucket arrays not freed yet, the current one included (tests watch reclamation).
  [[nodiscard]] std::size_t arrays_alive() const;

 private:
  struct node {
    endpoint_entry* entry;
    std::size_t hash;
    const node* next;
  };
  struct array {
    explicit array(std::size_t n) : mask(n - 1), heads(new std::atomic<const node*>[n]) {
      for (std::size_t i = 0; i < n; ++i) heads[i].store(nullptr, std::memory_order_relaxed);
    }
    const std::size_t mask;
    std::unique_ptr<std::atomic<const node*>[]> heads;
    std::deque<node> nodes;  // the chains' nodes: stable addresses, freed with the array
  };
  struct retired {
    const array* old;
    std::vector<std::uint64_t> marks;  // the shards' quiescent counters when it was replaced
  };
  // Readers on a shard of the group are covered by its quiescent states; others are counted.
  class read_guard;
  static const endpoint_entry* lookup(const array& a, const endpoint& ep, std::size_t h) noexcept;
  void grow();     // under writer_
  void reclaim();  // under writer_

  // The entries in the order added: chunk k holds 16 << k of them and never moves.
  static constexpr unsigned order_chunks = 48;
  static void locate(std::size_t i, unsigned& chunk, std::size_t& at) noexcept;

  shard_group& group_;
  const void* owner_;
  std::atomic<array*> current_;
  std::size_t count_ = 0;  // under writer_
  std::unique_ptr<std::atomic<endpoint_entry*>[]> order_[order_chunks];
  std::atomic<std::size_t> published_{0};  // entries in order_ readers may see
  mutable std::atomic<std::uint64_t> outside_readers_{0};
  mutable std::mutex writer_;  // adding an endpoint: one writer at a time
  std::vector<retired> retired_;
  std::vector<std::unique_ptr<endpoint_entry>> entries_;
};

}  // namespace conpool::detail
