// SPDX-License-Identifier: MIT
#pragma once
// Counts the leases that are dead at hand-out (a non-blocking poll() right after acquire sees a
// FIN, an RST or stray bytes) when tasks talk to a server that closes or resets connections
// after its replies. Used by the gate's test (which asserts) and by bench/ (which reports).

#include <poll.h>

#include <random>

#include <conpool/conpool.hpp>

#include "rude_server.hpp"

namespace conpool::testing {

/// What the kernel says of `fd` now, without waiting: true when the peer closed, reset or wrote.
inline bool dead_now(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && p.revents != 0;
}

struct handout_counts {
  int leases = 0;
  int reused = 0;  // leases of a connection lent before
  int dead = 0;    // dead at hand-out
  int failed = 0;  // requests that failed (the server may close after the hand-out)
  endpoint_stats stats;  // the pool's, once closed
};

/// `tasks` tasks, each `requests` 7-byte echoes with 0-3 ms pauses between them, through one
/// pool (limit `tasks`, `strict`: config::check_on_reuse) against a rude_server in `mode`
/// (`fin_in_reply`: its FIN in the reply's segment).
inline handout_counts count_handouts(ring_mode m, rude_server::after_reply mode, bool strict,
                                     int tasks, int requests, bool fin_in_reply = false) {
  rude_server srv(mode, fin_in_reply);
  const endpoint ep{"127.0.0.1", srv.port()};
  handout_counts n;
  shard s({.mode = m});
  s.run([](const endpoint& ep, bool strict, int tasks, int requests,
           handout_counts& n) -> task<void> {
    config c = default_config();
    c.max_connections_per_endpoint = tasks;
    c.check_on_reuse = strict;
    pool p(c);
    co_await scoped([&](scope& sc) -> task<void> {
      for (int t = 0; t < tasks; ++t) {
        sc.spawn([](pool& p, const endpoint& ep, int t, int requests,
                    handout_counts& n) -> task<void> {
          std::mt19937 random(static_cast<unsigned>(t));
          std::uniform_int_distribution<int> pause_us(0, 3000);
          for (int i = 0; i < requests; ++i) {
            result<connection> c = co_await p.acquire(ep);
            if (!c) {
              ++n.failed;
              continue;
            }
            ++n.leases;
            if (c->use_count() > 1) ++n.reused;
            if (dead_now(c->flow().native_handle())) ++n.dead;
            const std::string_view request = "request";
            char back[7];
            const bool ok =
                (co_await c->flow().write_all(request)).has_value() &&
                (co_await c->flow().read_exact(std::as_writable_bytes(std::span(back))))
                    .has_value() &&
                std::string_view(back, 7) == request;
            if (ok) {
              p.release(std::move(*c));
            } else {
              ++n.failed;
              p.close(std::move(*c));
            }
            (void)co_await sleep_for(std::chrono::microseconds(pause_us(random)));
          }
        }(p, ep, t, requests, n));
      }
      co_await sc.join();
    });
    co_await p.close_pool();
    n.stats = p.stats(ep);
  }(ep, strict, tasks, requests, n));
  return n;
}

}  // namespace conpool::testing
