// SPDX-License-Identifier: MIT
// The runtime's costs: a task created and awaited, a spawned task through the ready queue, a
// NOP through the kernel (alone, in a task, under a deadline, 32 to a batch), a timer, and a
// receive armed and cancelled (with the NOP that carries it to the kernel).
// Arg 0: plain ring; arg 1: SINGLE_ISSUER|DEFER_TASKRUN.
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <conpool/conpool.hpp>

using namespace conpool;
using namespace std::chrono_literals;

namespace {

shard_options options(const benchmark::State& state) {
  return {.mode = state.range(0) == 0 ? ring_mode::plain : ring_mode::defer_taskrun};
}

// Per-iteration kernel entries and SQEs, from the shard's own counters.
void report(benchmark::State& state, const shard_counters& before, const shard_counters& after,
            double ops_per_iteration = 1) {
  const double n = static_cast<double>(state.iterations()) * ops_per_iteration;
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.counters["enters/op"] = static_cast<double>(after.enters - before.enters) / n;
  state.counters["sqes/op"] = static_cast<double>(after.sqes - before.sqes) / n;
  state.SetLabel(state.range(0) == 0 ? "plain" : "defer_taskrun");
}

task<int> leaf(int v) { co_return v + 1; }

void BM_task_create_resume(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    int v = 0;
    for (auto _ : state) {
      v = co_await leaf(v);  // allocate frame, transfer in, transfer out, free frame
      benchmark::DoNotOptimize(v);
    }
  }(state));
  report(state, before, s.counters());
}

void BM_spawn_join(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    co_await scoped([&](scope& sc) -> task<void> {
      for (auto _ : state) {
        sc.spawn([]() -> task<void> { co_return; }());
        co_await sc.join();  // through the ready queue and back
      }
    });
  }(state));
  report(state, before, s.counters());
}

void BM_nop_round_trip(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    for (auto _ : state) {
      result<void> r = co_await io::nop();
      benchmark::DoNotOptimize(r);
    }
  }(state));
  report(state, before, s.counters());
}

void BM_nop_batch32(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    co_await scoped([&](scope& sc) -> task<void> {
      for (auto _ : state) {
        for (int i = 0; i < 32; ++i) {
          sc.spawn([]() -> task<void> { (void)co_await io::nop(); }());
        }
        co_await sc.join();  // 32 SQEs in one io_uring_enter
      }
    });
  }(state));
  report(state, before, s.counters(), 32);
}

task<result<void>> nop_task() { co_return co_await io::nop(); }

void BM_nop_task(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    for (auto _ : state) {
      result<void> r = co_await nop_task();
      benchmark::DoNotOptimize(r);
    }
  }(state));
  report(state, before, s.counters());
}

// The same NOP task under a deadline that does not fire: the cost of with_timeout's timer
// (armed with the NOP, removed after it) over BM_nop_task.
void BM_nop_with_timeout(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    for (auto _ : state) {
      result<void> r = co_await with_timeout(1h, nop_task());
      benchmark::DoNotOptimize(r);
    }
  }(state));
  report(state, before, s.counters());
}

// A short timer that fires: dominated by the kernel's hrtimer, not by conpool.
void BM_timer_10us(benchmark::State& state) {
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state) -> task<void> {
    for (auto _ : state) {
      result<void> r = co_await io::sleep(10us);
      benchmark::DoNotOptimize(r);
    }
  }(state));
  report(state, before, s.counters());
}

void BM_cancel_recv(benchmark::State& state) {
  int fds[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
  shard s(options(state));
  const shard_counters before = s.counters();
  s.run([](benchmark::State& state, int fd) -> task<void> {
    std::byte b[1];
    for (auto _ : state) {
      // Arm a receive that never completes, cancel it, wait for both CQEs.
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](int fd, std::byte* b) -> task<void> {
          (void)co_await io::recv(fd, std::span(b, 1));
        }(fd, b));
        (void)co_await io::nop();  // the receive reaches the kernel in this NOP's batch
        // scope exit: IORING_OP_ASYNC_CANCEL, then join
      });
    }
  }(state, fds[0]));
  report(state, before, s.counters());
  ::close(fds[0]);
  ::close(fds[1]);
}

void modes(benchmark::internal::Benchmark* b) {
  b->Arg(0);
  if (shard::kernel_has_defer_taskrun()) b->Arg(1);
}

}  // namespace

BENCHMARK(BM_task_create_resume)->Apply(modes);
BENCHMARK(BM_spawn_join)->Apply(modes);
BENCHMARK(BM_nop_round_trip)->Apply(modes);
BENCHMARK(BM_nop_batch32)->Apply(modes);
BENCHMARK(BM_nop_task)->Apply(modes);
BENCHMARK(BM_nop_with_timeout)->Apply(modes);
BENCHMARK(BM_timer_10us)->Apply(modes);
BENCHMARK(BM_cancel_recv)->Apply(modes);

BENCHMARK_MAIN();
