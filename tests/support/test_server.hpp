// SPDX-License-Identifier: MIT
#pragma once
// An in-process io_uring echo server on the test's own shard, which counts the connections it
// sees and can, on command, close (FIN), reset (RST) or write stray bytes into every connection
// it holds.

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <list>
#include <string>
#include <vector>

#include "support.hpp"

namespace conpool::testing {

class test_server {
 public:
  enum class act { none, fin, rst, stray };

  explicit test_server(bool v6 = false)
      : listener_(*listener::open(socket_address::loopback(0, v6))) {}
  /// Listening at `at` (another loopback address, a given port).
  explicit test_server(socket_address at) : listener_(*listener::open(at)) {}

  endpoint where() const { return {listener_.address().host(), listener_.address().port()}; }

  int open_now = 0;  // connections the server holds
  int peak = 0;      // the most it held at once
  int accepted = 0;  // connections accepted in all
  std::size_t bytes = 0;
  bool silent = false;  // accept but never answer

  /// Accepts and serves until the scope is left (spawn it into the test's scope).
  task<void> run(scope& sc) {
    for (;;) {
      result<flow> f = co_await listener_.accept();
      if (!f) co_return;
      ++accepted;
      peak = std::max(peak, ++open_now);
      conns_.push_back(conn{std::move(*f), act::none});
      sc.spawn(serve(std::prev(conns_.end())));
    }
  }

  /// Applies `a` to every connection held now (their pending reads are cancelled so that the
  /// serving tasks act at once). Connections the kernel has established but the accept loop has
  /// not taken yet count as held: they are taken first (an open's connect can complete in the
  /// same loop turn it was submitted in, before this shard's accept has run).
  task<void> apply(act a) {
    for (int i = 0; i < 10'000 && accept_pending(); ++i) (void)co_await io::nop();
    (void)co_await io::nop();  // the accept loop stores what it took
    for (conn& c : conns_) c.pending = a;
    for (conn& c : conns_) (void)co_await io::cancel_fd(c.f.native_handle());
    for (int i = 0; i < 3; ++i) (void)co_await io::nop();  // let the serving tasks act
  }

 private:
  // A connection waits in the listener's queue.
  bool accept_pending() const {
    pollfd p{.fd = listener_.native_handle(), .events = POLLIN, .revents = 0};
    return ::poll(&p, 1, 0) > 0;
  }

  struct conn {
    flow f;
    act pending;
  };

  task<void> serve(std::list<conn>::iterator it) {
    std::vector<std::byte> buf(64 * 1024);
    for (;;) {
      result<std::size_t> n = co_await it->f.read_some(buf);
      if (!n && n.error() == std::errc::operation_canceled && it->pending != act::none) {
        const act a = std::exchange(it->pending, act::none);
        if (a == act::stray) {
          (void)co_await it->f.write_all("stray bytes");
          continue;
        }
        if (a == act::rst) {
          const linger l{.l_onoff = 1, .l_linger = 0};
          ::setsockopt(it->f.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        break;
      }
      if (!n || *n == 0) break;
      bytes += *n;
      if (!silent && !co_await it->f.write_all(std::span(buf.data(), *n))) break;
    }
    (void)co_await it->f.close();
    --open_now;
    conns_.erase(it);
  }

  listener listener_;
  std::list<conn> conns_;
};

/// Starts the pool's name-lookup helper (a thread with one io_uring descriptor, kept for the
/// process's life) so that a test counting descriptors does not count it.
inline void start_name_helper() {
  refusing_port port;
  shard s;
  s.run([](socket_address a) -> task<void> {
    pool p;
    // A name in /etc/hosts (no query goes out) to a refusing port: starts the helper.
    (void)co_await p.acquire(endpoint{"localhost", a.port()});
    co_await p.close_pool();
  }(port.address));
}

/// created == closed + active + idle, for every endpoint of `p`.
inline void check_stats_add_up(const pool& p) {
  for (const auto& [ep, s] : p.all_stats()) {
    CAPTURE(ep.to_string());
    CAPTURE(s);
    CHECK(s.total_created == s.total_closed + s.active + s.idle);
  }
}

/// Lets the loop turn until `done()` holds (bounded): for effects that arrive as completions.
template <class Pred>
task<bool> turns_until(Pred done) {
  for (int i = 0; i < 10000 && !done(); ++i) (void)co_await io::nop();
  co_return done();
}

using pool_body = std::function<task<void>(pool&, test_server&)>;

/// A shard, a test_server on it, a pool with `c`: runs `body`, closes the pool, checks that
/// the stats add up, that nothing is left active or idle, and that no descriptor leaked.
inline void with_pool(ring_mode m, config c, pool_body body) {
  fd_leak_check leaks;
  shard s({.mode = m});
  s.run([](config c, pool_body& body) -> task<void> {
    test_server server;
    co_await scoped([&](scope& sc) -> task<void> {
      sc.spawn(server.run(sc));
      pool p(std::move(c));
      co_await body(p, server);
      co_await p.close_pool();
      check_stats_add_up(p);
      for (const auto& [ep, st] : p.all_stats()) {
        CHECK(st.active == 0);
        CHECK(st.idle == 0);
      }
    });
  }(std::move(c), body));
}

/// Writes `msg` and reads the echo back.
inline task<result<std::string>> echo_once(flow& f, std::string msg) {
  if (auto w = co_await f.write_all(msg); !w) co_return fail(w.error());
  std::string back(msg.size(), '\0');
  if (auto r = co_await f.read_exact(std::as_writable_bytes(std::span(back))); !r) {
    co_return fail(r.error());
  }
  co_return back;
}

}  // namespace conpool::testing
