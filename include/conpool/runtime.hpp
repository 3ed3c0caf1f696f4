// SPDX-License-Identifier: MIT
#pragma once
/// `runtime`: N shards, one thread each (optionally pinned to a CPU), working together.
///
/// A pool made for the runtime (`pool p(rt)`) serves every shard: each shard reuses its own
/// connections without touching another core's memory, the per-endpoint limit holds across
/// all of them, and connections move between shards over IORING_OP_MSG_RING when one shard
/// waits at the limit while another holds idle ones or releases one (see pool.hpp).
///
/// `run(body)` starts the shards, runs `body(i)` on shard i, and returns once every body has
/// finished and every pool of the runtime is closed (a shard whose body is done keeps serving
/// the others' hand-offs until then).
///
/// Example:
///   conpool::runtime rt({.shards = 4, .pin = true});
///   conpool::pool p(rt);
///   rt.run([&](unsigned shard) -> task<void> {
///     for (int i = 0; i < 1000; ++i) (void)co_await p.with_connection(ep, talk);
///   });
///   std::cout << p.stats(ep);   // summed over the four shards

#include <functional>
#include <memory>

#include <conpool/shard.hpp>
#include <conpool/shard_group.hpp>
#include <conpool/task.hpp>

namespace conpool {

/// A runtime's settings.
struct runtime_options {
  unsigned shards = 0;  ///< 1 to 64; 0: one per CPU this process may run on (at most 64)
  bool pin = false;     ///< pin shard i to the i-th CPU this process may run on (modulo)
  shard_options shard{};  ///< each shard's ring
};

class runtime {
 public:
  /// Throws std::invalid_argument naming a bad option (shards above 64).
  explicit runtime(runtime_options options = {});
  /// Its pools must be gone by then (aborts otherwise: they would point at it).
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  [[nodiscard]] unsigned size() const noexcept;

  /// Runs `body(i)` on each shard i in its own thread and returns when all have finished and
  /// the runtime's pools are closed. Rethrows the first exception a body (or a shard's set-up)
  /// threw. Not reentrant.
  void run(const std::function<task<void>(unsigned shard)>& body);

  /// The ring of shard `i` during a run: the target of `io::msg_send` between the shards'
  /// tasks. -1 outside a run.
  [[nodiscard]] int ring_fd(unsigned i) const noexcept;

  /// The calling thread's shard index in its runtime (0 on a lone shard or off any shard).
  [[nodiscard]] static unsigned shard_index() noexcept;
  /// The group of the runtime's shards (`pool(rt)` is `pool(rt.group())`).
  [[nodiscard]] shard_group& group() noexcept { return *group_; }

 private:
  friend class pool;
  runtime_options options_;
  std::unique_ptr<shard_group> group_;
};

}  // namespace conpool
