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
// atomic pointer. Adding an endpoint (one writer at a time) prepends a node to its chain;
// removing one copies the nodes before it. When the table is fuller than one node a bucket, or
// its dead nodes outnumber the live ones, it is rebuilt (twice the size, or smaller once most
// endpoints are gone) and published; the old array, its nodes and the removed entries are freed
// once every shard of the group has passed a quiescent point (a loop turn, or a wait in the
// kernel) since (QSBR), and no thread outside the group reads it. Adding and removing are
// amortised O(1), not a copy of every entry.
//
// An entry's life: it is listed while it has uses (each shard's slab of it, each
// endpoint_handle). A shard drops its slab once the endpoint has had no connection, waiter or
// pin there for config::endpoint_idle_timeout; the entry goes when its last use does, its
// totals added to the pool's (an entry whose removal had to wait for a hand-off between shards
// goes at a later sweep). Its memory has owners of its own (`holds`): the table, and each
// handle, which may outlive the pool.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <conpool/endpoint.hpp>
#include <conpool/stats.hpp>

#include "shard_group.hpp"

namespace conpool::detail {

class endpoint_slab;
class endpoint_table;

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
  // Cold: written on a probe, an open, a close, a wait or a hand-off, after the hot line.
  std::atomic<std::uint64_t> probing{0};  // of `idle`: in a background health check
  std::atomic<std::uint64_t> leaks{0};
  std::atomic<std::uint64_t> opening{0};
  std::atomic<std::uint64_t> waiting{0};
  std::atomic<std::uint64_t> acquire_timeouts{0};
  std::atomic<std::uint64_t> handoffs{0};
  std::atomic<std::uint64_t> closed_by[close_reason_count]{};
  std::atomic<std::uint64_t> errors_by[error_kind_count]{};
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
  endpoint_entry(endpoint e, unsigned shards, const void* pool, std::uint64_t n)
      : owner(pool), sides(new shard_stats[shards]), shard_count(shards), serial(n),
        ep(std::move(e)) {}

  // Read by the hit path through a handle, never written: the first line (the counts below,
  // which handle copies write, and `waiting`, which other shards write, are on lines of
  // their own).
  const void* const owner;  // the pool_shared whose table holds it (handles check it)
  const std::unique_ptr<shard_stats[]> sides;
  const unsigned shard_count;
  const std::uint64_t serial;  // the order the pool's endpoints were added in
  const endpoint ep;
  /// Slabs of it on the shards plus handles held; the top bit once it is out of the table.
  alignas(64) std::atomic<std::uint32_t> uses{0};
  static constexpr std::uint32_t removed = 1U << 31;
  /// Owners of its memory: the table (until readers are done with it) and each handle.
  std::atomic<std::uint32_t> holds{1};
  /// The table listing it; nullptr once the table is gone (a handle outlived its pool).
  std::atomic<endpoint_table*> table{nullptr};
  /// Connections of this endpoint alive on any shard or travelling between two (opening
  /// included): at most max_connections_per_endpoint.
  alignas(64) std::atomic<int> budget{0};
  /// Bit i: shard i has tasks waiting for a connection of this endpoint.
  alignas(64) std::atomic<std::uint64_t> waiting{0};

  /// The shards' stats summed.
  [[nodiscard]] endpoint_stats sum() const noexcept;
  /// One more use, unless it is out of the table already.
  bool try_use() noexcept {
    std::uint32_t u = uses.load(std::memory_order_relaxed);
    while ((u & removed) == 0) {
      if (uses.compare_exchange_weak(u, u + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  /// Gives up an ownership of its memory; the last frees it.
  static void drop_hold(endpoint_entry* e) noexcept {
    if (e->holds.fetch_sub(1, std::memory_order_acq_rel) == 1) delete e;
  }
};

class endpoint_table {
 public:
  /// The table of the pool whose shared state is `owner`.
  endpoint_table(shard_group& group, const void* owner);
  ~endpoint_table();
  endpoint_table(const endpoint_table&) = delete;
  endpoint_table& operator=(const endpoint_table&) = delete;

  /// The entry of `ep` (added on first use) with one use taken for the caller: a shard's slab
  /// or a handle. It stays listed until that use is given back (`unuse`).
  endpoint_entry& use(const endpoint& ep);
  /// Gives back a use; an entry left without any (and with nothing travelling between shards)
  /// is removed now.
  void unuse(endpoint_entry& e);
  /// Removes the entries nobody uses (their last handle dropped after their slabs went) and
  /// frees what readers are done with: a walk over every entry, which a shard does now and then.
  void sweep();
  /// The stats of `ep` summed over the shards, or nothing when it is not listed. Any thread.
  [[nodiscard]] std::optional<endpoint_stats> stats(const endpoint& ep) const;
  /// Every endpoint with its shards' stats summed, in the order they were added. Any thread,
  /// without locks: the shards go on.
  [[nodiscard]] std::vector<std::pair<endpoint, endpoint_stats>> all_stats() const;
  /// Every endpoint's stats summed, removed ones included (their totals as they were). Any
  /// thread; it waits for a removal in progress.
  [[nodiscard]] endpoint_stats totals() const;
  /// Endpoints listed now. Any thread.
  [[nodiscard]] std::size_t size() const noexcept { return listed_.load(std::memory_order_relaxed); }
  /// Bucket arrays not freed yet, the current one included (tests watch reclamation).
  [[nodiscard]] std::size_t arrays_alive() const;
  /// Removed entries whose memory the table still owns (readers may hold them).
  [[nodiscard]] std::size_t retired_entries() const;

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
    std::deque<node> nodes;  // the chains' nodes (dead ones too): freed with the array
    std::size_t dead = 0;    // nodes no chain reaches any more
  };
  struct retired {
    const array* old = nullptr;            // or
    endpoint_entry* entry = nullptr;        // one removed
    std::vector<std::uint64_t> marks;  // the shards' quiescent counters when it was unlinked
  };
  // Readers on a shard of the group are covered by its quiescent states; others are counted.
  class read_guard;
  static const endpoint_entry* lookup(const array& a, const endpoint& ep, std::size_t h) noexcept;
  template <class F>
  static void for_each(const array& a, F&& f);
  void rebuild(std::size_t size) noexcept;  // under writer_
  void rebuild_or_throw(std::size_t size);
  void retire(retired r);           // under writer_
  void remove(endpoint_entry& e);   // under writer_
  void reclaim();                   // under writer_

  static constexpr std::size_t min_size = 64;  // buckets at least

  shard_group& group_;
  const void* owner_;
  std::atomic<array*> current_;
  std::size_t count_ = 0;  // under writer_
  std::uint64_t serials_ = 0;  // under writer_
  std::atomic<std::size_t> listed_{0};
  mutable std::atomic<std::uint64_t> outside_readers_{0};
  mutable std::mutex writer_;  // adding or removing an endpoint: one writer at a time
  mutable std::mutex removal_;  // a removal (unlink, totals) against `totals`
  endpoint_stats removed_totals_;  // under removal_
  std::vector<retired> retired_;
};

}  // namespace conpool::detail
