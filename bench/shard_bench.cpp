// SPDX-License-Identifier: MIT
// Shards: the hit path on a shard of a runtime vs a lone shard, and the two hand-offs between
// shards over IORING_OP_MSG_RING, as latency percentiles:
// - release -> remote waiter: shard A releases while shard B waits at the limit; measured from
//   just before A's release() to B's acquire returning (A's submission, the MSG_RING, B waking
//   in the kernel, B's loop turn);
// - steal: shard B holds the only idle connection; A's acquire asks B and gets it (a round trip).
// Each run is one Google Benchmark iteration; the figures are counters (p50/p99 in µs).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include <benchmark/benchmark.h>

#include <conpool/conpool.hpp>

#include "../tools/bench/echo_server.hpp"

using namespace conpool;
using clock_type = std::chrono::steady_clock;

namespace {

config limit_one() {
  config c = default_config();
  c.max_connections_per_endpoint = 1;
  return c;
}

void report(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) { return us[static_cast<std::size_t>(q * (us.size() - 1))]; };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["samples"] = static_cast<double>(us.size());
}

double micros(clock_type::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// acquire + release of an idle connection on shard 0 of a 2-shard runtime (the other shard
// idle), vs the same on a lone shard: what the shared budget and table cost the hit path.
void BM_hit_on_runtime_shard(benchmark::State& state) {
  bench::echo_server srv(1);
  const endpoint ep{"127.0.0.1", srv.ports()[0]};
  const bool runtime_pool = state.range(0) == 1;
  constexpr int rounds = 2'000'000;
  double ns = 0;
  auto body = [&](pool& p) -> task<void> {
    (void)co_await p.warm_endpoint(ep, 1);
    const auto t0 = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
      result<connection> c = co_await p.acquire(ep);
      p.release(std::move(*c));
    }
    ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() / rounds;
  };
  for (auto _ : state) {
    if (runtime_pool) {
      runtime rt({.shards = 2});
      pool p(rt);
      rt.run([&](unsigned shard) -> task<void> {
        if (shard == 0) co_await body(p);
      });
    } else {
      shard s;
      pool p;
      s.run([&]() -> task<void> {
        co_await body(p);
        co_await p.close_pool();
      }());
    }
  }
  state.counters["ns_per_hit"] = ns;
  state.SetLabel(runtime_pool ? "shard 0 of 2" : "lone shard");
}
BENCHMARK(BM_hit_on_runtime_shard)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

// The connection bounces between two shards: every acquisition is a hand-off from a release.
void BM_handoff_release_to_waiter(benchmark::State& state) {
  bench::echo_server srv(1);
  const endpoint ep{"127.0.0.1", srv.ports()[0]};
  constexpr int per_shard = 20'000;
  std::vector<double> us[2];
  for (auto _ : state) {
    runtime rt({.shards = 2, .pin = true});
    pool p(rt, limit_one());
    // The last release: its time, and which shard made it (a local reuse is not a sample).
    std::atomic<clock_type::rep> released_at{0};
    std::atomic<unsigned> released_by{2};
    std::atomic<int> local{0};
    rt.run([&](unsigned shard) -> task<void> {
      us[shard].reserve(per_shard);
      for (int i = 0; i < per_shard; ++i) {
        result<connection> c = co_await p.acquire(ep);
        const auto got = clock_type::now();
        const unsigned by = released_by.load(std::memory_order_acquire);
        const clock_type::time_point at{clock_type::duration(released_at.load())};
        if (by == 1 - shard) {
          us[shard].push_back(micros(got - at));
        } else if (by == shard) {
          local.fetch_add(1);
        }
        released_at.store(clock_type::now().time_since_epoch().count());
        released_by.store(shard, std::memory_order_release);
        p.release(std::move(*c));
      }
    });
    state.counters["local_reuses"] = local.load();
    const endpoint_stats st = p.stats(ep);
    state.counters["created"] = static_cast<double>(st.total_created);
  }
  us[0].insert(us[0].end(), us[1].begin(), us[1].end());
  report(state, us[0]);
}
BENCHMARK(BM_handoff_release_to_waiter)->Iterations(1)->Unit(benchmark::kMillisecond);

// Steal: the idle connection sits on the other shard; the acquire asks for it and gets it.
void BM_handoff_steal(benchmark::State& state) {
  bench::echo_server srv(1);
  const endpoint ep{"127.0.0.1", srv.ports()[0]};
  constexpr int per_shard = 20'000;
  std::vector<double> us[2];
  for (auto _ : state) {
    runtime rt({.shards = 2, .pin = true});
    pool p(rt, limit_one());
    rt.run([&](unsigned shard) -> task<void> {
      const int other = rt.ring_fd(1 - shard);
      if (shard == 0) {  // the first holder
        result<connection> c = co_await p.acquire(ep);
        p.release(std::move(*c));
        (void)co_await io::msg_send(other, {});
      }
      for (int i = 0; i < per_shard; ++i) {
        (void)co_await io::msg_receive();  // the connection is idle on the other shard
        const auto t0 = clock_type::now();
        result<connection> c = co_await p.acquire(ep);
        us[shard].push_back(micros(clock_type::now() - t0));
        p.release(std::move(*c));
        if (shard == 1 || i + 1 < per_shard) (void)co_await io::msg_send(other, {});
      }
    });
  }
  us[0].insert(us[0].end(), us[1].begin(), us[1].end());
  report(state, us[0]);
}
BENCHMARK(BM_handoff_steal)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
