// SPDX-License-Identifier: MIT
// The pool's costs: acquire + release of an idle connection (the hit path: time, heap
// allocations, coroutine frames, syscalls per op), and a 64-byte echo through the pool vs over a
// fresh connection per request, at 1 and 50 concurrent tasks, against an io_uring echo server on
// its own thread (its own shard, its own core).
// The replacement operator new/delete below pair malloc with free; g++ 12 warns wrongly about
// inlined uses of them ("mismatched allocation function").
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <malloc.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <conpool/conpool.hpp>

using namespace conpool;
using namespace std::chrono_literals;

// Heap allocations on this thread (the library's included: the replacement is process-wide),
// and the bytes they hold (malloc's usable size: what they really cost).
static thread_local std::uint64_t t_allocations = 0;
static thread_local std::int64_t t_live_bytes = 0;
void* operator new(std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    t_live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept {
  if (p != nullptr) t_live_bytes -= static_cast<std::int64_t>(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
// Over-aligned types (slots and slabs are cache-line aligned): aligned_alloc, freed by free.
void* operator new(std::size_t n, std::align_val_t a) {
  ++t_allocations;
  const auto align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (std::max<std::size_t>(n, 1) + align - 1) / align * align)) {
    t_live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return operator new(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
  return operator new(n, a, t);
}
void operator delete(void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { operator delete(p); }

namespace {

shard_options options(const benchmark::State& state) {
  return {.mode = state.range(0) == 0 ? ring_mode::plain : ring_mode::defer_taskrun};
}

// An echo server on its own thread and shard, until stop(), with `listeners` listeners on
// 127.0.0.1 (one endpoint each).
class echo_server_thread {
 public:
  explicit echo_server_thread(int listeners = 1) {
    thread_ = std::thread([this, listeners] {
      shard s;
      std::vector<listener> ls;
      for (int i = 0; i < listeners; ++i) {
        ls.push_back(*listener::open(socket_address::loopback(0)));
        ports_.push_back(ls.back().address().port());
      }
      ring_fd_ = s.ring_fd();
      ready_.store(1, std::memory_order_release);
      ready_.notify_one();
      s.run([](std::vector<listener>& ls) -> task<void> {
        co_await scoped([&](scope& sc) -> task<void> {
          for (listener& l : ls) sc.spawn(accept_loop(l, sc));
          (void)co_await io::msg_receive();  // stop: leaving the scope cancels everything
        });
      }(ls));
    });
    ready_.wait(0, std::memory_order_acquire);
  }
  ~echo_server_thread() {
    shard s;
    s.run([](int fd) -> task<void> { (void)co_await io::msg_send(fd, {}); }(ring_fd_));
    thread_.join();
  }
  endpoint where(std::size_t i = 0) const { return {"127.0.0.1", ports_[i]}; }

 private:
  static task<void> accept_loop(listener& l, scope& sc) {
    for (;;) {
      result<flow> f = co_await l.accept();
      if (!f) co_return;
      sc.spawn(serve(std::move(*f)));
    }
  }
  static task<void> serve(flow f) {
    std::byte buf[4096];
    for (;;) {
      result<std::size_t> n = co_await f.read_some(buf);
      if (!n || *n == 0) break;
      if (!co_await f.write_all(std::span(buf, *n))) break;
    }
    (void)co_await f.close();
  }

  std::thread thread_;
  std::vector<std::uint16_t> ports_;
  std::atomic<int> ready_{0};
  int ring_fd_ = -1;
};

// `n` listeners on 127.0.0.1 held by a child process, which never accepts: each connection
// made to one waits, established, in its backlog, enough for idle connections on the client
// side. A process of its own, so that 10,000 endpoints fit the descriptor limit (the client
// holds the connections, the child the listeners).
class listeners_process {
 public:
  explicit listeners_process(int n) {
    int ports[2];
    int stop[2];
    if (::pipe2(ports, O_CLOEXEC) != 0 || ::pipe2(stop, O_CLOEXEC) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ports[0]);
      ::close(stop[1]);
      std::vector<int> held;
      for (int i = 0; i < n; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const socket_address at = socket_address::loopback(0);
        if (fd < 0 || ::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, 16) != 0) _exit(1);
        const std::uint16_t port = socket_address::local_of(fd)->port();
        if (::write(ports[1], &port, sizeof port) != sizeof port) _exit(1);
        held.push_back(fd);
      }
      ::close(ports[1]);
      char c;
      (void)::read(stop[0], &c, 1);  // until the parent closes its end
      _exit(0);
    }
    ::close(ports[1]);
    ::close(stop[0]);
    stop_ = stop[1];
    for (int i = 0; i < n; ++i) {
      std::uint16_t port = 0;
      if (::read(ports[0], &port, sizeof port) != sizeof port) break;
      ports_.push_back(port);
    }
    ::close(ports[0]);
  }
  ~listeners_process() {
    ::close(stop_);
    ::waitpid(pid_, nullptr, 0);
  }
  listeners_process(const listeners_process&) = delete;
  listeners_process& operator=(const listeners_process&) = delete;
  [[nodiscard]] std::size_t size() const noexcept { return ports_.size(); }
  endpoint where(std::size_t i) const { return {"127.0.0.1", ports_[i]}; }

 private:
  pid_t pid_ = -1;
  int stop_ = -1;
  std::vector<std::uint16_t> ports_;
};

void report_mode(benchmark::State& state) {
  state.SetLabel(state.range(0) == 0 ? "plain" : "defer_taskrun");
}

// acquire + release of one idle connection, `turn` saying when the next acquire comes: in the
// same turn as the release (the hit path: no syscall), or after the turn ends (the release's
// idle watcher is armed, the acquire cancels it: one io_uring_enter, here with a NOP's round
// trip). `strict`: config::check_on_reuse, one recv(MSG_PEEK) a reuse.
enum class next_acquire { same_turn, next_turn };
void acquire_release(benchmark::State& state, next_acquire turn, bool strict) {
  echo_server_thread server;
  shard s(options(state));
  std::uint64_t allocations = 0;
  shard_counters before{};
  s.run([](benchmark::State& state, endpoint ep, next_acquire turn, bool strict,
           std::uint64_t& allocations, shard_counters& before) -> task<void> {
    config c;
    c.check_on_reuse = strict;
    pool p(c);
    if (!co_await p.warm_endpoint(ep, 1)) co_return;
    before = shard::current()->counters();
    const std::uint64_t a0 = t_allocations;
    for (auto _ : state) {
      result<connection> c = co_await p.acquire(ep);  // the hit path: no frame, no syscall
      benchmark::DoNotOptimize(c);
      p.release(std::move(*c));
      if (turn == next_acquire::next_turn) (void)co_await io::nop();
    }
    allocations = t_allocations - a0;
    co_await p.close_pool();
  }(state, server.where(), turn, strict, allocations, before));
  const shard_counters after = s.counters();
  const double n = static_cast<double>(state.iterations());
  state.counters["allocs/op"] = static_cast<double>(allocations) / n;
  state.counters["frames/op"] = static_cast<double>(after.frames - before.frames) / n;
  state.counters["enters/op"] = static_cast<double>(after.enters - before.enters) / n;
  state.counters["sqes/op"] = static_cast<double>(after.sqes - before.sqes) / n;
  state.SetItemsProcessed(state.iterations());
  report_mode(state);
}

void BM_acquire_release_idle(benchmark::State& state) {
  acquire_release(state, next_acquire::same_turn, false);
}
void BM_acquire_release_strict(benchmark::State& state) {
  acquire_release(state, next_acquire::same_turn, true);
}
// Includes a NOP's round trip (BM_nop_round_trip in runtime_bench) each iteration.
void BM_acquire_release_next_turn(benchmark::State& state) {
  acquire_release(state, next_acquire::next_turn, false);
}
void BM_acquire_release_next_turn_strict(benchmark::State& state) {
  acquire_release(state, next_acquire::next_turn, true);
}

// with_connection on the hit path, with a callback that does no I/O: by endpoint (a host name
// longer than std::string's 15-byte inline buffer, which a copy would allocate for) or by
// handle (state.range(0)). The endpoint is not copied: allocs/op counts what remains.
void BM_with_connection(benchmark::State& state) {
  const bool by_handle = state.range(0) != 0;
  echo_server_thread server;
  shard s;
  std::uint64_t allocations = 0;
  std::uint64_t failures = 0;
  s.run([](benchmark::State& state, std::uint16_t port, bool by_handle, std::uint64_t& allocations,
           std::uint64_t& failures) -> task<void> {
    pool p;
    // 24 bytes (a copy would allocate): the server's address as an IPv4-mapped IPv6 literal,
    // written out (a literal: no lookup).
    const endpoint ep{"0:0:0:0:0:ffff:127.0.0.1", port};
    const endpoint_handle h = p.handle(ep);
    auto nothing = [](flow&) -> task<result<int>> { co_return 1; };
    if (!co_await p.with_connection(ep, nothing)) ++failures;  // opened once, then reused
    const std::uint64_t a0 = t_allocations;
    for (auto _ : state) {
      result<int> r;
      if (by_handle) {
        r = co_await p.with_connection(h, nothing);
      } else {
        r = co_await p.with_connection(ep, nothing);
      }
      if (!r) ++failures;
    }
    allocations = t_allocations - a0;
    co_await p.close_pool();
  }(state, server.where().port, by_handle, allocations, failures));
  state.counters["allocs/op"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations());
  state.counters["failures"] = static_cast<double>(failures);
  state.SetLabel(by_handle ? "handle" : "endpoint");
}

// One open through the pool an iteration: acquire on an empty pool (an IPv4 literal: no lookup;
// socket, options, connect under connect_timeout), then close. The counters say what an open
// costs in SQEs and io_uring_enter calls (the close's SQE included); the other syscalls an open
// makes (socket, setsockopt) are counted with perf (README, "Opening a connection").
void BM_open_close(benchmark::State& state) {
  echo_server_thread server;
  shard s(options(state));
  shard_counters before{};
  std::uint64_t failures = 0;
  s.run([](benchmark::State& state, endpoint ep, shard_counters& before,
           std::uint64_t& failures) -> task<void> {
    pool p;
    before = shard::current()->counters();
    for (auto _ : state) {
      result<connection> c = co_await p.acquire(ep);
      if (!c) {
        ++failures;
        continue;
      }
      p.close(std::move(*c));
    }
    co_await p.close_pool();
  }(state, server.where(), before, failures));
  const shard_counters after = s.counters();
  const auto n = static_cast<double>(state.iterations());
  state.counters["enters/op"] = static_cast<double>(after.enters - before.enters) / n;
  state.counters["sqes/op"] = static_cast<double>(after.sqes - before.sqes) / n;
  state.counters["failures"] = static_cast<double>(failures);
  state.SetItemsProcessed(state.iterations());
  report_mode(state);
}

// The hit path cycling over state.range(0) endpoints (one idle connection each, another
// listener each, the listeners in a child process), by endpoint or (state.range(1)) by handle:
// what many upstreams cost against one. The same budget as the hit path.
void BM_hit_cycling(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool by_handle = state.range(1) != 0;
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;  // a descriptor an endpoint here
  ::setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(n) + 64) {
    state.SkipWithError(("needs " + std::to_string(n + 64) + " descriptors (RLIMIT_NOFILE)").c_str());
    return;
  }
  listeners_process server(n);
  if (server.size() != static_cast<std::size_t>(n)) {
    state.SkipWithError("the listeners' process could not open them all");
    return;
  }
  shard s;
  std::uint64_t allocations = 0;
  s.run([](benchmark::State& state, const listeners_process& server, int n, bool by_handle,
           std::uint64_t& allocations) -> task<void> {
    pool p;
    std::vector<endpoint> eps;
    std::vector<endpoint_handle> handles;
    for (int i = 0; i < n; ++i) {
      eps.push_back(server.where(static_cast<std::size_t>(i)));
      handles.push_back(p.handle(eps.back()));
      if (!co_await p.warm_endpoint(eps.back(), 1)) co_return;
    }
    // Every idle watcher cancelled and its CQEs reaped (held, then a few turns), then all given
    // back in the turn the loop runs in: the loop measures the hit path, not N watchers'
    // cancellations piling up in one turn (a real loop's turns end between requests).
    std::vector<connection> held;
    for (const endpoint& ep : eps) {
      result<connection> c = co_await p.acquire(ep);
      if (!c) co_return;
      held.push_back(std::move(*c));
    }
    for (int t = 0; t < 3; ++t) (void)co_await io::nop();
    for (connection& c : held) p.release(std::move(c));
    const std::uint64_t a0 = t_allocations;
    std::size_t i = 0;
    for (auto _ : state) {
      result<connection> c;
      if (by_handle) {
        c = co_await p.acquire(handles[i]);
      } else {
        c = co_await p.acquire(eps[i]);
      }
      benchmark::DoNotOptimize(c);
      p.release(std::move(*c));
      if (++i == eps.size()) i = 0;
    }
    allocations = t_allocations - a0;
    co_await p.close_pool();
  }(state, server, n, by_handle, allocations));
  state.counters["allocs/op"] = static_cast<double>(allocations) / static_cast<double>(state.iterations());
  state.SetLabel(by_handle ? "handle" : "endpoint");
}

// Adding endpoints to a pool (each made known with pool::handle: its entry in the endpoint
// table and its slab, no connection): the time per add over the first and the last thousand of
// state.range(0). Linear growth keeps the two close.
void BM_add_endpoints(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  shard s;
  double first_ns = 0;
  double last_ns = 0;
  for (auto _ : state) {
    s.run([](int n, double& first_ns, double& last_ns) -> task<void> {
      pool p;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        // Distinct endpoints: 127.0.x.y, port 1 to 50.
        const int host = i / 50;
        const endpoint ep{"127.0." + std::to_string(host / 250) + "." +
                              std::to_string(host % 250 + 1),
                          static_cast<std::uint16_t>(i % 50 + 1)};
        benchmark::DoNotOptimize(p.handle(ep));
        if (i + 1 == 1000 || i + 1 == n) {
          const auto t1 = std::chrono::steady_clock::now();
          (i + 1 == 1000 ? first_ns : last_ns) =
              std::chrono::duration<double, std::nano>(t1 - t0).count() / 1000;
        }
        if (i + 1 == n - 1000) t0 = std::chrono::steady_clock::now();
      }
      co_await p.close_pool();
    }(n, first_ns, last_ns));
  }
  state.counters["ns/add, first 1k"] = first_ns;
  state.counters["ns/add, last 1k"] = last_ns;
}

// User-space bytes the pool keeps per idle connection: `idle` connections warmed on one
// endpoint of a fresh pool with the limit state.range(0) (INT_MAX for 0), counted as what the
// shard's thread holds on the heap after, less before (slots, slab, the endpoint's entry and
// its table; coroutine frames come and go; sockets are the kernel's).
void BM_idle_bytes(benchmark::State& state) {
  const int limit = state.range(0) == 0 ? INT_MAX : static_cast<int>(state.range(0));
  const int idle = static_cast<int>(state.range(1));
  echo_server_thread server;
  shard s;
  std::int64_t held = 0;
  bool ok = true;
  for (auto _ : state) {
    s.run([](endpoint ep, int limit, int idle, std::int64_t& held, bool& ok) -> task<void> {
      config c;
      c.max_connections_per_endpoint = limit;
      pool p(c);
      const std::int64_t before = t_live_bytes;
      ok = static_cast<bool>(co_await p.warm_endpoint(ep, idle)) && p.stats(ep).idle == static_cast<std::uint64_t>(idle);
      held = t_live_bytes - before;
      co_await p.close_pool();
    }(server.where(), limit, idle, held, ok));
  }
  state.counters["bytes/idle"] = static_cast<double>(held) / idle;
  state.counters["bytes"] = static_cast<double>(held);
  state.counters["failures"] = ok ? 0 : 1;
}

task<bool> echo64(flow& f) {
  static const std::string msg(64, 'x');
  if (!co_await f.write_all(msg)) co_return false;
  std::byte back[64];
  co_return (co_await f.read_exact(back)).has_value();
}

// Each iteration: `concurrency` requests at once, through the pool or each on a new connection.
void BM_echo(benchmark::State& state, bool pooled) {
  const int concurrency = static_cast<int>(state.range(1));
  echo_server_thread server;
  shard s(options(state));
  std::uint64_t failures = 0;
  s.run([](benchmark::State& state, endpoint ep, int concurrency, bool pooled,
           std::uint64_t& failures) -> task<void> {
    config c;
    c.max_connections_per_endpoint = concurrency;
    pool p(c);
    const socket_address to = *socket_address::parse(ep.host, ep.port);
    for (auto _ : state) {
      co_await scoped([&](scope& sc) -> task<void> {
        for (int i = 0; i < concurrency; ++i) {
          if (pooled) {
            sc.spawn([](pool& p, const endpoint& ep, std::uint64_t& failures) -> task<void> {
              result<bool> ok = co_await p.with_connection(ep, echo64);
              if (!ok || !*ok) ++failures;
            }(p, ep, failures));
          } else {
            sc.spawn([](socket_address to, std::uint64_t& failures) -> task<void> {
              result<flow> f = co_await connect(to);
              if (!f || !co_await echo64(*f)) ++failures;
              if (f) (void)co_await f->close();
            }(to, failures));
          }
        }
        co_await sc.join();
      });
    }
    co_await p.close_pool();
  }(state, server.where(), concurrency, pooled, failures));
  state.SetItemsProcessed(state.iterations() * concurrency);
  state.counters["failures"] = static_cast<double>(failures);
  report_mode(state);
}

void BM_echo_pooled(benchmark::State& state) { BM_echo(state, true); }
void BM_echo_fresh(benchmark::State& state) { BM_echo(state, false); }

void modes(benchmark::internal::Benchmark* b) {
  b->Arg(0);
  if (shard::kernel_has_defer_taskrun()) b->Arg(1);
}
void modes_and_concurrency(benchmark::internal::Benchmark* b) {
  for (int c : {1, 50}) {
    b->Args({0, c});
    if (shard::kernel_has_defer_taskrun()) b->Args({1, c});
  }
  b->ArgNames({"ring", "concurrent"})->UseRealTime();
}

}  // namespace

BENCHMARK(BM_acquire_release_idle)->Apply(modes);
BENCHMARK(BM_acquire_release_strict)->Apply(modes);
BENCHMARK(BM_acquire_release_next_turn)->Apply(modes);
BENCHMARK(BM_acquire_release_next_turn_strict)->Apply(modes);
BENCHMARK(BM_hit_cycling)->ArgsProduct({{1, 100, 10000}, {0, 1}})->ArgNames({"endpoints", "handle"});
BENCHMARK(BM_with_connection)->Arg(0)->Arg(1)->ArgName("handle");
BENCHMARK(BM_add_endpoints)->Arg(2000)->Arg(20000)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_open_close)->Apply(modes)->UseRealTime();
BENCHMARK(BM_idle_bytes)
    ->ArgsProduct({{100, 1000, 1000000, 0}, {1, 100}})
    ->ArgNames({"limit", "idle"})
    ->Iterations(1);
BENCHMARK(BM_echo_pooled)->Apply(modes_and_concurrency);
BENCHMARK(BM_echo_fresh)->Apply(modes_and_concurrency);

BENCHMARK_MAIN();
