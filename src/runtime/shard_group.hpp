// SPDX-License-Identifier: MIT
#pragma once
// The shards that work together: a runtime's N shards, or a lone shard on its own (a group of
// one). A group knows each member's ring (the target of posts between shards) and its
// quiescent-state counter (RCU: when an old endpoint table may be freed), and the services
// that span it (an upper layer's objects, such as pools, wound up when a runtime's run ends:
// the runtime knows them only through this interface).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include <conpool/task.hpp>

namespace conpool::detail {

class shard_core;

/// Something that spans a group's shards and must be wound up before they stop (a pool, closed
/// across its shards). Registered by its owner; `wind_up` runs on one shard of the group.
struct group_service {
  task<void> (*wind_up)(group_service* self) = nullptr;
};

/// Shards per group at most: a pool marks the shards waiting for an endpoint in one 64-bit word.
inline constexpr unsigned max_group_shards = 64;

class shard_group {
 public:
  explicit shard_group(unsigned size);
  shard_group(const shard_group&) = delete;
  shard_group& operator=(const shard_group&) = delete;

  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(members_.size()); }
  /// Shard `i` is up (its thread, before any shard posts to it) or gone.
  void attach(unsigned i, shard_core* core) noexcept;
  void detach(unsigned i) noexcept { members_[i].core = nullptr; }
  [[nodiscard]] shard_core* core(unsigned i) const noexcept { return members_[i].core; }
  [[nodiscard]] int ring_fd(unsigned i) const noexcept { return members_[i].ring_fd; }

  /// RCU: every member's quiescent-state counter now (taken after unpublishing a snapshot).
  void marks(std::vector<std::uint64_t>& out) const;
  /// True once every member other than `self` has passed a quiescent point since `marks`, or
  /// was offline (waiting in the kernel) when they were taken.
  [[nodiscard]] bool passed(const std::vector<std::uint64_t>& marks, unsigned self) const noexcept;

  /// Services spanning this group (a runtime winds them up when its run ends).
  void add_service(group_service* s);
  void remove_service(group_service* s) noexcept;
  [[nodiscard]] std::vector<group_service*> services() const;

 private:
  struct member {
    shard_core* core = nullptr;
    int ring_fd = -1;
  };
  std::vector<member> members_;
  mutable std::mutex services_mutex_;  // they come and go rarely, never on a request's path
  std::vector<group_service*> services_;
};

}  // namespace conpool::detail
