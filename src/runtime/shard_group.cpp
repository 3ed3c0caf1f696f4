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

void shard_group::add_service(group_service* s) {
  std::lock_guard lock(services_mutex_);
  services_.push_back(s);
}

void shard_group::remove_service(group_service* s) noexcept {
  std::lock_guard lock(services_mutex_);
  std::erase(services_, s);
}

std::vector<group_service*> shard_group::services() const {
  std::lock_guard lock(services_mutex_);
  return services_;
}

}  // namespace conpool::detail
