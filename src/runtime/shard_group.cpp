// SPDX-License-Identifier: MIT
#include "shard_group.hpp"

#include <algorithm>

#include "shard_core.hpp"

namespace conpool::detail {

shard_group::shard_group(unsigned size) : members_(size) {}

void shard_group::attach(unsigned i, shard_core* core) noexcept {
  members_[i].core = core;
  members_[i].ring_fd = core->ring_fd();
}

void shard_group::marks(std::vector<std::uint64_t>& out) const {
  out.resize(members_.size());
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const shard_core* c = members_[i].core;
    out[i] = c == nullptr ? 0 : c->quiescent_mark();
  }
}

bool shard_group::passed(const std::vector<std::uint64_t>& marks, unsigned self) const noexcept {
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (i == self || marks[i] % 2 == 0) continue;  // ourselves, or offline then
    const shard_core* c = members_[i].core;
    if (c != nullptr && c->quiescent_mark() == marks[i]) return false;  // still in that turn
  }
  return true;
}

void shard_group::add_pool(pool* p) {
  std::lock_guard lock(pools_mutex_);
  pools_.push_back(p);
}

void shard_group::remove_pool(pool* p) noexcept {
  std::lock_guard lock(pools_mutex_);
  std::erase(pools_, p);
}

std::vector<pool*> shard_group::pools() const {
  std::lock_guard lock(pools_mutex_);
  return pools_;
}

}  // namespace conpool::detail
