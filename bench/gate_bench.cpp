// SPDX-License-Identifier: MIT
// The hand-out gate against a server that closes (FIN) or resets (RST) each connection right
// after its reply, or resets it 0-10 ms after: 10 tasks, 1,000 requests each with 0-3 ms pauses
// between them, through one pool. Counters per 1,000 leases: dead at hand-out (a non-blocking
// poll() right after acquire sees a FIN, an RST or bytes), leases of a reused connection, and
// requests that failed (a server may close a connection after it was handed out: no pool can
// see that coming). Default mode vs strict mode (config::check_on_reuse). One iteration each:
// these count events, the time is the run's.
#include <benchmark/benchmark.h>

#include "../tests/support/handout_count.hpp"

using namespace conpool;
using conpool::testing::rude_server;

namespace {

void BM_dead_at_handout(benchmark::State& state) {
  const ring_mode ring = state.range(0) == 0 ? ring_mode::plain : ring_mode::defer_taskrun;
  const auto server = static_cast<rude_server::after_reply>(state.range(1));
  const bool strict = state.range(2) != 0;
  constexpr int tasks = 10;
  constexpr int requests = 1000;
  conpool::testing::handout_counts n;
  for (auto _ : state) n = conpool::testing::count_handouts(ring, server, strict, tasks, requests);
  const double per_1000 = 1000.0 / n.leases;
  state.counters["dead/1000"] = n.dead * per_1000;
  state.counters["reused/1000"] = n.reused * per_1000;
  state.counters["failed/1000"] = n.failed * per_1000;
  const char* names[] = {"keep", "fin", "rst", "rst_0-10ms"};
  state.SetLabel(std::string(ring == ring_mode::plain ? "plain" : "defer_taskrun") + ", server " +
                 names[state.range(1)] + (strict ? ", strict" : ", default"));
}

void cases(benchmark::internal::Benchmark* b) {
  const auto servers = {rude_server::after_reply::fin, rude_server::after_reply::rst,
                        rude_server::after_reply::rst_later};
  for (int ring : {0, 1}) {
    if (ring == 1 && !shard::kernel_has_defer_taskrun()) continue;
    for (const auto server : servers) {
      for (int strict : {0, 1}) b->Args({ring, static_cast<int>(server), strict});
    }
  }
  b->ArgNames({"ring", "server", "strict"})->Iterations(1)->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_dead_at_handout)->Apply(cases);

BENCHMARK_MAIN();
