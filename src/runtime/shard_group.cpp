// SPDX-License-Identifier: MIT
#include "shard_group.hpp"

#include <conpool/shard_group.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

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

namespace conpool {

shard_group::shard_group(unsigned size) {
  if (size == 0 || size > detail::max_group_shards) {
    throw std::invalid_argument("conpool::shard_group: size " + std::to_string(size) +
                                " is out of range (1 to " +
                                std::to_string(detail::max_group_shards) + ")");
  }
  impl_ = std::make_unique<detail::shard_group>(size);
}

shard_group::~shard_group() {
  bool shards_up = false;
  for (unsigned i = 0; i < impl_->size(); ++i) shards_up = shards_up || impl_->core(i) != nullptr;
  if (shards_up || !impl_->services().empty()) {
    std::fprintf(stderr, "conpool: shard_group destroyed while its shards or pools live\n");
    std::abort();
  }
}

unsigned shard_group::size() const noexcept { return impl_->size(); }

int shard_group::ring_fd(unsigned i) const noexcept {
  return i < impl_->size() && impl_->core(i) != nullptr ? impl_->ring_fd(i) : -1;
}

}  // namespace conpool
