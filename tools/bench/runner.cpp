// SPDX-License-Identifier: MIT
#include "runner.hpp"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <conpool/conpool.hpp>

#include "http.hpp"
#include "redis.hpp"

namespace conpool::bench {
namespace {

using clock = std::chrono::steady_clock;

enum class protocol { echo, http, redis };

// What every worker of a run shares.
struct run_state {
  pool& p;
  protocol proto;
  int size;
  std::string request;  // the HTTP request or the Redis command, encoded once
  clock::time_point started = clock::now();
  run_result& out;
  progress& bar;
  // Progress: a target run is done after `seconds` or `requests`; a preset after min_time and
  // at least one round of `requests`.
  double seconds = 1;
  double requests = 0;
  bool by_time = true;

  void record(clock::time_point t0, clock::time_point t1) {
    const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0);
    out.latency.add(std::chrono::duration<double>(t0 - started).count(),
                    static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0)));
    ++out.requests;
    if ((out.requests & 63) == 0) {
      const double elapsed = std::chrono::duration<double>(t1 - started).count();
      const double by_count = requests > 0 ? static_cast<double>(out.requests) / requests : 1e9;
      const double fraction = by_time ? std::min(elapsed / seconds, by_count) : by_count;
      bar.update(fraction, out.requests,
                 static_cast<double>(out.requests) / std::max(elapsed, 1e-9));
    }
  }
  void failed(std::error_code e) {
    if (out.errors++ == 0) out.first_error = e.message();
  }
};

// One worker's buffers, reused from request to request.
struct worker {
  explicit worker(int size) : message(static_cast<std::size_t>(size)), back(message.size()) {}
  std::vector<std::byte> message;
  std::vector<std::byte> back;
  clients::read_buffer in;
  std::uint64_t sent = 0;
};

// A message no other request sends: its number in the first bytes, a pattern after.
void stamp(worker& w, std::uint64_t id) {
  for (std::size_t i = 0; i < w.message.size(); ++i) {
    w.message[i] = static_cast<std::byte>((id * 31 + i * 7) & 0xff);
  }
  std::memcpy(w.message.data(), &id, std::min(sizeof id, w.message.size()));
}

task<result<bool>> echo_exchange(flow& f, worker& w) {
  stamp(w, ++w.sent);
  if (auto wr = co_await f.write_all(w.message); !wr) co_return fail(wr.error());
  if (auto rd = co_await f.read_exact(w.back); !rd) co_return fail(rd.error());
  if (w.back != w.message) co_return clients::protocol_error();  // every byte checked
  co_return true;
}

task<result<bool>> http_exchange(flow& f, worker& w, const std::string& request) {
  if (auto wr = co_await f.write_all(request); !wr) co_return fail(wr.error());
  result<clients::http_response> r = co_await clients::read_http_response(f, w.in, false);
  if (!r) co_return fail(r.error());
  if (r->status < 200 || r->status > 299) co_return fail(std::errc::protocol_error);
  co_return r->keep_alive;
}

task<result<bool>> redis_exchange(flow& f, worker& w, const std::string& command, int size) {
  result<clients::resp_reply> r = co_await clients::resp_call(f, w.in, command);
  if (!r) co_return fail(r.error());
  if (r->kind == '-') co_return fail(std::errc::protocol_error);
  // GET: the value written before the run, whole; SET: +OK.
  if (r->kind == '$' && r->text.size() != static_cast<std::size_t>(size)) {
    co_return clients::protocol_error();
  }
  co_return true;
}

task<result<bool>> exchange(run_state& st, flow& f, worker& w) {
  switch (st.proto) {
    case protocol::http:
      return http_exchange(f, w, st.request);
    case protocol::redis:
      return redis_exchange(f, w, st.request, st.size);
    case protocol::echo:
      break;
  }
  return echo_exchange(f, w);
}

// One request: lease, exchange, then back to the pool (or closed when the server ends the
// connection or something failed).
task<void> one_request(run_state& st, const endpoint& ep, worker& w) {
  const clock::time_point t0 = clock::now();
  result<connection> c = co_await st.p.acquire(ep);
  if (!c) {
    st.failed(c.error());
    co_return;
  }
  w.in.clear();
  result<bool> keep = co_await exchange(st, c->flow(), w);
  if (!keep) {
    st.p.close(std::move(*c));
    st.failed(keep.error());
    co_return;
  }
  if (*keep && w.in.data().empty()) {
    st.p.release(std::move(*c));
  } else {
    st.p.close(std::move(*c));
  }
  st.record(t0, clock::now());
}

config pool_config(bool pooled, int limit) {
  config c;
  c.max_connections_per_endpoint = limit;
  if (!pooled) c.max_connection_uses = 1;  // fresh: one request a connection
  return c;
}

void add_stats(run_result& out, const pool& p) {
  for (const auto& [ep, s] : p.all_stats()) {
    out.created += s.total_created;
    out.reused += s.total_reused;
  }
  out.timings = p.histograms();
}

tools::metrics_server* metrics_target = nullptr;

// ---- presets ------------------------------------------------------------------------------------

struct preset_state {
  const preset& p;
  std::vector<endpoint> endpoints;
  int next_client = 0;
  std::vector<double> popularity;  // zipf: cumulative share of the endpoints, in order
  std::uint64_t random = 0x9e3779b97f4a7c15ULL;

  // Zipf with s = 1: endpoint k (from 0) drawn with weight 1 / (k + 1).
  void zipf() {
    double sum = 0;
    for (std::size_t k = 0; k < endpoints.size(); ++k) {
      sum += 1.0 / static_cast<double>(k + 1);
      popularity.push_back(sum);
    }
    for (double& c : popularity) c /= sum;
  }
  const endpoint& pick(int client) {
    if (popularity.empty()) return endpoints[static_cast<std::size_t>(client % p.servers)];
    random ^= random << 13;  // xorshift64: the same sequence every run
    random ^= random >> 7;
    random ^= random << 17;
    const double u = static_cast<double>(random >> 11) * 0x1.0p-53;
    const auto k = std::lower_bound(popularity.begin(), popularity.end(), u) - popularity.begin();
    return endpoints[std::min(static_cast<std::size_t>(k), endpoints.size() - 1)];
  }
};

task<void> preset_worker(run_state& st, preset_state& ps) {
  worker w(ps.p.bytes);
  const int clients = ps.p.servers * ps.p.clients_per_server;
  while (ps.next_client < clients) {
    const int client = ps.next_client++;
    const endpoint& ep = ps.pick(client);
    for (int m = 0; m < ps.p.messages; ++m) co_await one_request(st, ep, w);
  }
}

task<void> preset_round(run_state& st, preset_state& ps) {
  ps.next_client = 0;
  co_await scoped([&](scope& sc) -> task<void> {
    for (int i = 0; i < ps.p.parallel; ++i) sc.spawn(preset_worker(st, ps));
    co_await sc.join();
  });
}

std::string describe_preset(const preset& p) {
  return std::to_string(p.servers) + " servers x " + std::to_string(p.clients_per_server) +
         " clients x " + std::to_string(p.messages) + " messages, " + std::to_string(p.parallel) +
         " parallel, " + std::to_string(p.bytes) + " B, pool " + std::to_string(p.pool_size);
}

// ---- targets ------------------------------------------------------------------------------------

struct target_state {
  endpoint ep;
  clock::time_point deadline;
  std::uint64_t budget = UINT64_MAX;  // requests left to start
};

task<void> target_worker(run_state& st, target_state& ts) {
  worker w(st.size);
  while (ts.budget > 0 && clock::now() < ts.deadline) {
    --ts.budget;
    co_await one_request(st, ts.ep, w);
  }
}

// Redis GET reads a value written once before the run.
task<result<void>> redis_prepare(pool& p, const endpoint& ep, const options& o) {
  const std::string value(static_cast<std::size_t>(o.size), 'v');
  const std::string_view set[] = {"SET", "conpool-bench:key", value};
  const std::string command = clients::resp_command(set);
  result<connection> c = co_await p.acquire(ep);
  if (!c) co_return fail(c.error());
  clients::read_buffer in;
  result<clients::resp_reply> r = co_await clients::resp_call(c->flow(), in, command);
  if (!r || r->kind != '+') {
    p.close(std::move(*c));
    co_return fail(r ? std::make_error_code(std::errc::protocol_error) : r.error());
  }
  p.release(std::move(*c));
  co_return result<void>{};
}

}  // namespace

void publish_metrics_to(tools::metrics_server* s) noexcept { metrics_target = s; }

task<run_result> run_preset(const preset& p, bool pooled, const echo_server& server,
                            const options& o, progress& bar) {
  run_result out;
  out.name = p.name;
  out.mode = pooled ? "pooled" : "fresh";
  out.detail = describe_preset(p);
  out.concurrency = p.parallel;
  // Fresh connections are limited by the clients running at once, not by the pool size.
  auto owned = std::make_unique<pool>(pool_config(pooled, pooled ? p.pool_size : p.parallel * 2));
  pool& pl = *owned;
  auto served = std::make_optional<tools::metrics_server::publication>(metrics_target, pl);
  preset_state ps{.p = p, .endpoints = {}, .popularity = {}};
  for (int i = 0; i < p.servers; ++i) {
    ps.endpoints.emplace_back("127.0.0.1", server.ports()[static_cast<std::size_t>(i)]);
  }
  if (p.zipf) ps.zipf();
  run_state st{.p = pl, .proto = protocol::echo, .size = p.bytes, .request = {}, .started = clock::now(), .out = out, .bar = bar};
  st.seconds = std::max(o.min_time, 1e-3);
  st.requests = static_cast<double>(p.servers) * p.clients_per_server * p.messages;
  bar.begin(p.name + " " + out.mode);
  do {
    co_await preset_round(st, ps);
    ++out.rounds;
  } while (clock::now() - st.started < std::chrono::duration<double>(o.min_time));
  out.seconds = std::chrono::duration<double>(clock::now() - st.started).count();
  bar.end();
  add_stats(out, pl);
  if (pooled && p.zipf) {  // the forward proxy's preset: what its memory comes to
    for (const auto& [ep, s] : pl.all_stats()) out.idle += s.idle;
    out.endpoints = pl.endpoints();
  }
  co_await pl.close_pool();
  served.reset();
  // What the pool held, idle connections and all: the heap given back when it goes, once the
  // server (a thread of this process) has let go of its side of the closed connections.
  for (int i = 0; i < 2000 && server.open_now() != 0; ++i) (void)co_await sleep_for(std::chrono::milliseconds(1));
  const std::size_t held = mallinfo2().uordblks;
  owned.reset();
  const std::size_t after = mallinfo2().uordblks;
  if (out.idle > 0 && held > after) {  // (a sanitizer's allocator tells mallinfo2 nothing)
    out.bytes_per_idle = static_cast<double>(held - after) / static_cast<double>(out.idle);
  }
  co_return out;
}

namespace {

// What a target run sends, decided once from the options.
struct target_plan {
  endpoint ep{};
  protocol proto = protocol::echo;
  std::string request{};  // HTTP GET or Redis command; empty for echo
  std::string detail{};
};

target_plan plan_target(const options& o) {
  const clients::url& u = *o.target;
  target_plan plan{.ep = endpoint(u.host, u.port)};
  plan.proto = u.scheme == "http" || u.scheme == "https" ? protocol::http
               : u.scheme == "redis"                     ? protocol::redis
                                                         : protocol::echo;
  plan.detail = std::to_string(o.connections) + " connections, " +
                (plan.proto == protocol::http    ? "GET " + u.path
                 : plan.proto == protocol::redis ? (o.redis_op == "get" ? "GET " : "SET ") +
                                                       std::to_string(o.size) + " B"
                                                 : "echo " + std::to_string(o.size) + " B");
  if (u.scheme == "tls" || u.scheme == "https") {
    // Verified by default, as everywhere in conpool; --insecure is the caller's explicit choice.
    plan.ep.tls = tls_config{tls_context::make({.ca_file = o.ca_file,
                                                .insecure_skip_verify = o.insecure}),
                             o.sni};
  }
  if (plan.proto == protocol::http) plan.request = clients::http_get_request(u.authority(), u.path);
  if (plan.proto == protocol::redis) {
    const std::string value(static_cast<std::size_t>(o.size), 'v');
    const std::string_view get[] = {"GET", "conpool-bench:key"};
    const std::string_view set[] = {"SET", "conpool-bench:key", value};
    plan.request = clients::resp_command(o.redis_op == "get"
                                             ? std::span<const std::string_view>(get)
                                             : std::span<const std::string_view>(set));
  }
  return plan;
}

run_result named(const options& o, bool pooled, const std::string& detail) {
  run_result out;
  out.name = o.target->to_string();
  out.mode = pooled ? "pooled" : "fresh";
  out.concurrency = o.connections;
  out.detail = detail;
  return out;
}

// Redis GET reads a value written before the run (on a pool of its own).
task<bool> prepare(const options& o, const target_plan& plan, run_result& out) {
  if (plan.proto != protocol::redis || o.redis_op != "get") co_return true;
  pool setup(pool_config(true, 1));
  result<void> ready = co_await redis_prepare(setup, plan.ep, o);
  co_await setup.close_pool();
  if (ready) co_return true;
  out.errors = 1;
  out.first_error = "SET before the run: " + ready.error().message();
  co_return false;
}

// `workers` workers of one shard against the plan's endpoint.
task<void> drive_target(run_state& st, const target_plan& plan, const options& o, int workers,
                        std::uint64_t requests) {
  target_state ts{plan.ep, {}};
  ts.deadline = o.requests ? clock::time_point::max()
                           : st.started + std::chrono::duration_cast<clock::duration>(
                                              std::chrono::duration<double>(o.duration));
  if (o.requests) ts.budget = requests;
  co_await scoped([&](scope& sc) -> task<void> {
    for (int i = 0; i < workers; ++i) sc.spawn(target_worker(st, ts));
    co_await sc.join();
  });
}

run_state target_state_for(pool& pl, const target_plan& plan, const options& o, run_result& out,
                           progress& bar, clock::time_point started) {
  run_state st{.p = pl, .proto = plan.proto, .size = o.size, .request = plan.request, .started = started, .out = out, .bar = bar};
  st.seconds = o.duration;
  if (o.requests) {
    st.requests = static_cast<double>(*o.requests);
    st.by_time = false;
  }
  return st;
}

}  // namespace

task<run_result> run_target(const options& o, bool pooled, progress& bar) {
  const target_plan plan = plan_target(o);
  run_result out = named(o, pooled, plan.detail);
  if (!co_await prepare(o, plan, out)) co_return out;
  pool pl(pool_config(pooled, pooled ? o.connections : o.connections * 2));
  const tools::metrics_server::publication served(metrics_target, pl);
  run_state st = target_state_for(pl, plan, o, out, bar, clock::now());
  bar.begin(o.target->scheme + " " + out.mode);
  co_await drive_target(st, plan, o, o.connections, o.requests.value_or(0));
  out.seconds = std::chrono::duration<double>(clock::now() - st.started).count();
  bar.end();
  add_stats(out, pl);
  co_await pl.close_pool();
  co_return out;
}

run_result run_sharded(const options& o, unsigned shards, bool pooled, progress& bar) {
  const target_plan plan = plan_target(o);
  run_result out = named(o, pooled, plan.detail + ", " + std::to_string(shards) + " shard" +
                                        (shards == 1 ? "" : "s"));
  out.name += " (" + std::to_string(shards) + (shards == 1 ? " shard)" : " shards)");
  {
    shard setup;
    if (!setup.run(prepare(o, plan, out))) return out;
  }
  runtime rt({.shards = shards, .pin = true});
  // One pool for all shards: --connections is its limit across them.
  pool pl(rt, pool_config(pooled, pooled ? o.connections : o.connections * 2));
  const tools::metrics_server::publication served(metrics_target, pl);
  std::vector<run_result> parts(shards);
  progress quiet(true);
  const clock::time_point started = clock::now();
  bar.begin(o.target->scheme + " " + out.mode + " x" + std::to_string(shards));
  rt.run([&](unsigned i) -> task<void> {
    const auto share = [&](std::uint64_t n) { return n / shards + (i < n % shards ? 1 : 0); };
    run_state st = target_state_for(pl, plan, o, parts[i], i == 0 ? bar : quiet, started);
    co_await drive_target(st, plan, o, static_cast<int>(share(static_cast<std::uint64_t>(o.connections))),
                          share(o.requests.value_or(0)));
  });
  out.seconds = std::chrono::duration<double>(clock::now() - started).count();
  bar.end();
  for (run_result& part : parts) {
    out.requests += part.requests;
    out.errors += part.errors;
    if (out.first_error.empty()) out.first_error = part.first_error;
    out.latency.merge(part.latency);
  }
  add_stats(out, pl);
  return out;
}

}  // namespace conpool::bench
