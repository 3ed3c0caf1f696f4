// SPDX-License-Identifier: MIT
// conpool-example-redis: the seed design's Redis example. A pool whose health check PINGs an idle
// connection before handing it out again (`config::health_check = redis_ping`), at most 50
// connections per endpoint, idle ones closed after 30 s. SETs a key, then GETs it --requests
// times from --concurrency workers through `pool::with_connection`, checking every value.
// Prints the pool's stats for the target last:
//
//   $ conpool-example-redis redis://127.0.0.1:6379 --requests 100
//   100 GETs returned the value
//   stats 127.0.0.1:6379 active=0 idle=1 created=1 reused=100 closed=0 errors=0
//
// Exit status: 0 every reply as expected; 1 a command failed or a reply was wrong (the target
// and the error on stderr); 2 bad arguments.
#include <unistd.h>

#include <chrono>
#include <exception>
#include <iostream>

#include <conpool/conpool.hpp>

#include "example_options.hpp"
#include "redis.hpp"

using namespace conpool;
using namespace conpool::clients;

namespace {

struct run_state {
  endpoint target;
  std::string target_name;
  std::string value;
  std::string get_command;
  int requests = 0;
  int started = 0;
  int matched = 0;
  std::string failure;  // the first failure, in words; stops the workers
};

// One command on a pooled connection: released after a reply, closed after an error.
task<result<resp_reply>> call(pool& p, const endpoint& ep, read_buffer& in,
                              const std::string& command) {
  in.clear();
  // The lambda captures by reference: see the g++ 12 note in conpool/task.hpp.
  co_return co_await p.with_connection(
      ep, [&in, &command](flow& f) { return resp_call(f, in, command); });
}

// "" when `r` is the reply wanted, else what went wrong.
std::string check(const result<resp_reply>& r, const run_state& st, std::string_view what,
                  char kind, std::string_view text) {
  if (!r) return describe(r.error(), st.target_name, what);
  if (r->kind == kind && r->text == text) return {};
  return st.target_name + ": " + std::string(what) + ": unexpected reply '" + r->kind + r->text +
         "'";
}

task<void> worker(pool& p, run_state& st) {
  read_buffer in;
  while (st.started < st.requests && st.failure.empty()) {
    ++st.started;
    result<resp_reply> r = co_await call(p, st.target, in, st.get_command);
    if (std::string problem = check(r, st, "GET", '$', st.value); !problem.empty()) {
      if (st.failure.empty()) st.failure = problem;
      break;
    }
    ++st.matched;
  }
}

task<int> run(const examples::example_options& o) {
  config c = default_config();
  c.health_check = redis_ping;
  c.max_idle_time = std::chrono::seconds(30);
  c.max_connections_per_endpoint = 50;
  pool p(c);
  run_state st;
  st.target = endpoint(o.target.host, o.target.port);
  st.target_name = o.target.to_string();
  st.requests = o.requests;
  st.value = "hello from conpool";
  const std::string key = "conpool:example:" + std::to_string(::getpid());
  const std::string_view set_args[] = {"SET", key, st.value, "EX", "300"};
  const std::string_view get_args[] = {"GET", key};
  const std::string set_command = resp_command(set_args);
  st.get_command = resp_command(get_args);

  read_buffer in;
  result<resp_reply> set = co_await call(p, st.target, in, set_command);
  st.failure = check(set, st, "SET", '+', "OK");
  if (st.failure.empty()) {
    co_await examples::in_parallel(o.concurrency, [&] { return worker(p, st); });
    std::cout << st.matched << " GETs returned the value\n";
  }
  co_return co_await examples::finish(p, st.target, st.failure, "conpool-example-redis");
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example(
      argc, argv,
      {.program = "conpool-example-redis", .schemes = "redis", .login = false, .concurrency = 1},
      run);
}
