// SPDX-License-Identifier: MIT
#pragma once
// The other clients conpool-bench compares with: wrk (HTTP) and redis-benchmark (Redis), run as
// child processes against the same server with the same connections, their output parsed.

#include <cstdint>
#include <string>

#include "options.hpp"

namespace conpool::bench {

struct peer_result {
  std::string peer;     ///< "wrk", "redis-benchmark"
  std::string command;  ///< as run
  bool ran = false;     ///< false: `why` says what stopped it (not installed, failed, ...)
  std::string why;
  double per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  ///< wrk: non-2xx responses and socket errors
  double seconds = 0;
};

/// `wrk -t1 -c<connections> -d<duration> --latency <target>`: one thread, like one shard.
peer_result run_wrk(const options& o);
/// `redis-benchmark -c <connections> -n <requests> -d <size> -t set,get --csv`, its GET (or SET)
/// row: SET runs first, so GET finds a value of `size` bytes, as conpool-bench's GET does.
peer_result run_redis_benchmark(const options& o, std::uint64_t requests);

}  // namespace conpool::bench
