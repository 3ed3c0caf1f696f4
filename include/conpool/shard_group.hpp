// SPDX-License-Identifier: MIT
#pragma once
/// `shard_group`: shards that work together, on threads the host owns.
///
/// A shard-per-core server keeps its own threads and loops: each thread makes shard i of the
/// group (`shard s(group, i)`) and drives it with `run` or with its own loop (`notify_fd()` +
/// `poll()`). One `pool p(group, cfg)` then serves every shard of the group, as it does a
/// `runtime`'s: the per-endpoint limit holds across the shards, connections move between them
/// over IORING_OP_MSG_RING, stats are read from any thread.
///
/// The host's part, as a `runtime` does it for its own threads:
/// - every shard of the group is made before any of them uses a pool of the group (a barrier
///   after the shards are made: a hand-off may go to any of them);
/// - the pools are closed (`co_await p.close_pool()` on one shard, the others still driving
///   their loops until it returns) before any shard is destroyed, and no shard is destroyed
///   while another may still post to it (a barrier before the shards go);
/// - the group outlives its shards and pools.
///
/// Example:
///   conpool::shard_group group(3);
///   conpool::pool p(group, cfg);
///   // on host thread i:
///   conpool::shard s(group, i);
///   up.arrive_and_wait();
///   s.spawn(serve(p));
///   epoll_ctl(efd, EPOLL_CTL_ADD, s.notify_fd(), &ev);
///   while (running) { epoll_wait(efd, events, 8, -1); s.poll(); }

#include <memory>

namespace conpool {

namespace detail {
class shard_group;
}

class shard_group {
 public:
  /// A group of `size` shards (1 to 64). Throws std::invalid_argument naming the size.
  explicit shard_group(unsigned size);
  /// Its shards and pools must be gone by then (aborts otherwise: they would point at it).
  ~shard_group();
  shard_group(const shard_group&) = delete;
  shard_group& operator=(const shard_group&) = delete;

  /// The number of shards.
  [[nodiscard]] unsigned size() const noexcept;
  /// Shard `i`'s ring (the target of `io::msg_send`), or -1 while shard `i` is not up.
  [[nodiscard]] int ring_fd(unsigned i) const noexcept;

 private:
  friend class shard;
  friend class pool;
  friend class runtime;
  std::unique_ptr<detail::shard_group> impl_;
};

}  // namespace conpool
