// SPDX-License-Identifier: MIT
// conpool-example-http: the seed design's first example, "make 100 requests - connections will
// be reused". GET requests go through one pool from --concurrency workers; a response that says
// "Connection: close" closes its connection instead of returning it. Prints how many responses
// had each status and, last, the pool's stats for the target:
//
//   $ conpool-example-http http://127.0.0.1:8080/ --requests 100
//   status 200: 100
//   stats 127.0.0.1:8080 active=0 idle=1 created=1 reused=99 closed=0 errors=0
//
// Exit status: 0 every request answered below 400; 1 a request failed (the target and the error
// on stderr); 2 bad arguments.
#include <exception>
#include <iostream>
#include <map>

#include <conpool/conpool.hpp>

#include "example_options.hpp"
#include "http.hpp"

using namespace conpool;
using namespace conpool::clients;

namespace {

struct run_state {
  endpoint target;
  std::string request;  // the same GET every time
  int requests = 0;
  int started = 0;
  std::map<int, int> statuses;
  std::string failure;  // the first failed request, in words; stops the workers
};

// One GET over a pooled connection. It goes back to the pool only when the response leaves it
// reusable: keep-alive, and nothing unread behind the response.
task<result<http_response>> get(pool& p, const run_state& st, read_buffer& in) {
  result<connection> c = co_await p.acquire(st.target);
  if (!c) co_return fail(c.error());
  in.clear();
  if (auto sent = co_await c->flow().write_all(st.request); !sent) {
    p.close(std::move(*c));
    co_return fail(sent.error());
  }
  result<http_response> r = co_await read_http_response(c->flow(), in, /*keep_body=*/false);
  if (r && r->keep_alive && in.data().empty()) {
    p.release(std::move(*c));
  } else {
    p.close(std::move(*c));
  }
  co_return r;
}

task<void> worker(pool& p, run_state& st, const std::string& target_name) {
  read_buffer in;
  while (st.started < st.requests && st.failure.empty()) {
    ++st.started;
    result<http_response> r = co_await get(p, st, in);
    if (!r) {
      st.failure = describe(r.error(), target_name, "GET");
      break;
    }
    ++st.statuses[r->status];
    if (r->status >= 400 && st.failure.empty()) {
      st.failure = target_name + ": GET: status " + std::to_string(r->status);
    }
  }
}

task<int> run(const examples::example_options& o) {
  pool p;  // the seed's defaults: 10 connections per endpoint, 60 s idle, 300 s lifetime
  run_state st;
  st.target = endpoint(o.target.host, o.target.port);
  st.request = http_get_request(o.target.authority(), o.target.path);
  st.requests = o.requests;
  const std::string target_name = o.target.to_string();
  co_await examples::in_parallel(o.concurrency, [&] { return worker(p, st, target_name); });
  for (const auto& [status, count] : st.statuses) {
    std::cout << "status " << status << ": " << count << '\n';
  }
  co_return co_await examples::finish(p, st.target, st.failure, "conpool-example-http");
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example(
      argc, argv,
      {.program = "conpool-example-http", .schemes = "http", .login = false, .concurrency = 1},
      run);
}
