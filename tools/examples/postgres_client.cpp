// SPDX-License-Identifier: MIT
// conpool-example-postgres: the seed design's "manual connection management" example. --requests
// `SELECT 1` queries run concurrently (all at once by default: one task each, in a scope) on a
// pool of at most 20 connections per endpoint, each retired after an hour or 1000 uses. Each
// task acquires a connection, starts the PostgreSQL session on it when it is fresh
// (use_count() == 1), queries, checks the row, and releases it (or closes it after an error).
// Prints the pool's stats for the target last:
//
//   $ conpool-example-postgres postgres://127.0.0.1:5432 --user postgres --database postgres
//   100 queries returned 1
//   stats 127.0.0.1:5432 active=0 idle=20 created=20 reused=80 closed=0 errors=0
//
// Only trust authentication is supported. Pooled connections are closed without a Terminate
// message: the server takes the end of the stream as one.
// Exit status: 0 every query returned 1; 1 a query failed (the target and the error, with the
// server's own message, on stderr); 2 bad arguments.
#include <chrono>
#include <exception>
#include <iostream>

#include <conpool/conpool.hpp>

#include "example_options.hpp"
#include "postgres.hpp"

using namespace conpool;
using namespace conpool::clients;

namespace {

struct run_state {
  const examples::example_options* options = nullptr;
  endpoint target;
  std::string target_name;
  int started = 0;
  int matched = 0;
  std::string failure;  // the first failure, in words; stops the workers
};

// "target: what: error[: the server's message]".
std::string failure_text(const run_state& st, std::error_code e, std::string_view what,
                         const std::string& server_error) {
  std::string text = describe(e, st.target_name, what);
  if (!server_error.empty()) text.append(": ").append(server_error);
  return text;
}

// One query on a manually managed connection.
task<void> query_once(pool& p, run_state& st) {
  result<connection> c = co_await p.acquire(st.target);
  if (!c) {
    if (st.failure.empty()) st.failure = failure_text(st, c.error(), "connect", {});
    co_return;
  }
  if (!st.failure.empty()) {  // another query failed: stop (a fresh connection has no session)
    p.close(std::move(*c));
    co_return;
  }
  read_buffer in(1024);
  std::string server_error;
  if (c->use_count() == 1) {  // fresh from connect: no session yet
    result<void> started =
        co_await pg_startup(c->flow(), in, st.options->user, st.options->database, &server_error);
    if (!started) {
      p.close(std::move(*c));
      if (st.failure.empty()) {
        st.failure = failure_text(st, started.error(), "startup", server_error);
      }
      co_return;
    }
  }
  result<pg_rows> r = co_await pg_simple_query(c->flow(), in, "SELECT 1", &server_error);
  // A server error leaves the session usable (the reply ran to ReadyForQuery); anything else
  // leaves it in an unknown state.
  if (r || r.error() == pg_error::server_error) {
    p.release(std::move(*c));
  } else {
    p.close(std::move(*c));
  }
  if (!r) {
    if (st.failure.empty()) st.failure = failure_text(st, r.error(), "SELECT 1", server_error);
  } else if (r->rows.size() != 1 || r->rows[0].size() != 1 || r->rows[0][0] != "1") {
    if (st.failure.empty()) st.failure = st.target_name + ": SELECT 1: unexpected rows";
  } else {
    ++st.matched;
  }
}

task<void> worker(pool& p, run_state& st) {
  while (st.started < st.options->requests && st.failure.empty()) {
    ++st.started;
    co_await query_once(p, st);
  }
}

task<int> run(const examples::example_options& o) {
  config c = default_config();
  c.max_connections_per_endpoint = 20;
  c.max_connection_lifetime = std::chrono::seconds(3600);
  c.max_connection_uses = 1000;
  pool p(c);
  run_state st;
  st.options = &o;
  st.target = endpoint(o.target.host, o.target.port);
  st.target_name = o.target.to_string();
  co_await examples::in_parallel(o.concurrency, [&] { return worker(p, st); });
  std::cout << st.matched << " queries returned 1\n";
  co_return co_await examples::finish(p, st.target, st.failure, "conpool-example-postgres");
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example(argc, argv,
                               {.program = "conpool-example-postgres",
                                .schemes = "postgres postgresql",
                                .login = true,
                                .concurrency = 100},
                               run);
}
