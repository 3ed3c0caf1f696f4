// SPDX-License-Identifier: MIT
// conpool-bench: how much pooling buys, and how conpool compares with the clients people use.
// See `conpool-bench --help` and README.md.
#include <iostream>
#include <memory>
#include <stdexcept>

#include <conpool/conpool.hpp>

#include "echo_server.hpp"
#include "report.hpp"

using namespace conpool;
using namespace conpool::bench;

namespace {

task<void> run_all(const options& o, const echo_server* server, report& r, progress& bar) {
  for (const preset& p : o.runs) {
    if (o.pooled()) r.runs.push_back(co_await run_preset(p, true, *server, o, bar));
    if (o.fresh()) r.runs.push_back(co_await run_preset(p, false, *server, o, bar));
  }
  if (o.target) {
    if (o.pooled()) r.runs.push_back(co_await run_target(o, true, bar));
    if (o.fresh()) r.runs.push_back(co_await run_target(o, false, bar));
  }
}

int main_checked(int argc, char** argv) {
  const std::optional<options> parsed = parse_options(argc, argv);
  if (!parsed) return 0;
  const options& o = *parsed;
  report r;
  r.command = o.command;
  progress bar(o.quiet);
  std::unique_ptr<tools::metrics_server> metrics;
  if (o.metrics) {
    metrics = std::make_unique<tools::metrics_server>(*o.metrics);
    publish_metrics_to(metrics.get());
    std::cerr << "metrics at http://" << metrics->address().to_string() << "/metrics\n";
  }
  {
    int servers = 0;
    for (const preset& p : o.runs) servers = std::max(servers, p.servers);
    std::unique_ptr<echo_server> server;
    if (servers > 0) server = std::make_unique<echo_server>(servers);
    if (o.shards > 0) {
      // 1, 2, ..., N shards against the target, or an echo server of our own.
      options so = o;
      std::unique_ptr<echo_server> echo;
      if (!so.target) {
        echo = std::make_unique<echo_server>(1);
        so.target = clients::url::parse("tcp://127.0.0.1:" + std::to_string(echo->ports()[0]));
      }
      for (unsigned n = 1; n <= so.shards; ++n) {
        if (so.pooled()) r.runs.push_back(run_sharded(so, n, true, bar));
        if (so.fresh()) r.runs.push_back(run_sharded(so, n, false, bar));
      }
    } else {
      shard s;
      s.run(run_all(o, server.get(), r, bar));
    }
  }  // the client shard ends before the echo server stops
  if (o.compare) {
    const run_result* ours = nullptr;
    for (std::size_t i = 0; i < r.runs.size(); ++i) {
      if (r.runs[i].mode == "pooled") ours = &r.runs[i];
    }
    if (ours != nullptr) {
      const std::size_t index = static_cast<std::size_t>(ours - r.runs.data());
      std::cerr << "running " << *o.compare << "...\n";
      peer_result theirs = *o.compare == "wrk"
                               ? run_wrk(o)
                               : run_redis_benchmark(o, std::max<std::uint64_t>(ours->requests, 1000));
      r.comparisons.push_back({index, std::move(theirs)});
    }
  }
  print_table(std::cout, r);
  if (o.json) write_json(*o.json, r);
  if (o.html) write_html(*o.html, r);
  std::uint64_t errors = 0;
  for (const run_result& run : r.runs) errors += run.errors;
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_checked(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "conpool-bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "conpool-bench: " << e.what() << "\n";
    return 1;
  }
}
