// SPDX-License-Identifier: MIT
// The pool against real servers: nginx (HTTP/1.1 keep-alive, closing connections itself after
// 3 requests) and redis-server (RESP, with a PING health check). Skipped, with a message, where
// the server binary is absent.
#include <charconv>
#include <fstream>

#include "../support/test_server.hpp"
#include "peer_process.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::check_stats_add_up;
using testing::fd_leak_check;
using testing::peer_process;

namespace {

// Appends what the peer sends next to `in`. Errors: the read's, errc::end_of_stream.
task<result<void>> read_more(flow& f, std::string& in) {
  std::byte buf[4096];
  result<std::size_t> n = co_await f.read_some(buf);
  if (!n) co_return fail(n.error());
  if (*n == 0) co_return fail(errc::end_of_stream);
  in.append(reinterpret_cast<const char*>(buf), *n);
  co_return result<void>{};
}

struct http_response {
  int status = 0;
  std::string body;
  bool close = false;  // the server said Connection: close
};

// Reads one HTTP/1.1 response with a Content-Length body.
task<result<http_response>> read_response(flow& f) {
  std::string in;
  std::size_t header_end = std::string::npos;
  while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
    if (auto more = co_await read_more(f, in); !more) co_return fail(more.error());
  }
  http_response r;
  const std::string head = in.substr(0, header_end);
  std::from_chars(head.data() + 9, head.data() + 12, r.status);  // "HTTP/1.1 200"
  std::size_t length = 0;
  if (const std::size_t p = head.find("Content-Length: "); p != std::string::npos) {
    std::from_chars(head.data() + p + 16, head.data() + head.size(), length);
  }
  r.close = head.find("Connection: close") != std::string::npos;
  r.body = in.substr(header_end + 4);
  while (r.body.size() < length) {
    if (auto more = co_await read_more(f, r.body); !more) co_return fail(more.error());
  }
  co_return r;
}

// One GET through the pool, as an HTTP client would: a "Connection: close" response closes the
// connection instead of returning it.
task<result<http_response>> get(pool& p, const endpoint& ep) {
  result<connection> c = co_await p.acquire(ep);
  if (!c) co_return fail(c.error());
  if (auto w = co_await c->flow().write_all("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); !w) {
    p.close(std::move(*c));
    co_return fail(w.error());
  }
  result<http_response> r = co_await read_response(c->flow());
  if (!r || r->close) {
    p.close(std::move(*c));
  } else {
    p.release(std::move(*c));
  }
  co_return r;
}

std::string resp(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Sends one encoded RESP command; reads one reply line (and a bulk string's payload).
task<result<std::string>> redis_send(flow& f, std::string command) {
  if (auto w = co_await f.write_all(command); !w) co_return fail(w.error());
  std::string in;
  for (;;) {
    const std::size_t eol = in.find("\r\n");
    if (eol != std::string::npos) {
      if (in[0] != '$') co_return in.substr(0, eol);
      int len = 0;
      std::from_chars(in.data() + 1, in.data() + eol, len);
      if (len < 0) co_return std::string("(nil)");
      if (in.size() >= eol + 2 + static_cast<std::size_t>(len) + 2) {
        co_return in.substr(eol + 2, static_cast<std::size_t>(len));
      }
    }
    if (auto more = co_await read_more(f, in); !more) co_return fail(more.error());
  }
}

// Not a coroutine: g++ 12 miscompiles a braced list passed to a coroutine's parameter.
task<result<std::string>> redis_call(flow& f, const std::vector<std::string>& args) {
  return redis_send(f, resp(args));
}

}  // namespace

TEST_CASE("servers: nginx keep-alive: reused until nginx closes after 3 requests") {
  const std::string nginx = testing::find_program("nginx");
  if (nginx.empty()) {
    MESSAGE("nginx is not installed: skipped");
    return;
  }
  testing::for_each_ring_mode([&](ring_mode m) {
    fd_leak_check leaks;
    testing::nginx_server server(nginx, 3);
    shard s({.mode = m});
    s.run([](endpoint ep) -> task<void> {
      pool p;
      for (int i = 0; i < 9; ++i) {
        result<http_response> r = co_await get(p, ep);
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body == "hello from nginx\n");
        CHECK(r->close == (i % 3 == 2));  // nginx's third request on a connection
      }
      const endpoint_stats st = p.stats(ep);
      CHECK(st.total_created == 3);  // 9 requests, 3 per connection
      CHECK(st.total_reused == 6);
      CHECK(st.errors == 0);
      co_await p.close_pool();
      check_stats_add_up(p);
    }(server.where()));
  });
}

TEST_CASE("servers: redis-server: PING health check, SET and GET over one pooled connection") {
  const std::string redis = testing::find_program("redis-server");
  if (redis.empty()) {
    MESSAGE("redis-server is not installed: skipped");
    return;
  }
  testing::for_each_ring_mode([&](ring_mode m) {
    fd_leak_check leaks;
    testing::redis_server server(redis);
    shard s({.mode = m});
    s.run([](endpoint ep) -> task<void> {
      int pings = 0;
      config c;
      c.max_connections_per_endpoint = 4;
      c.health_check = [&pings](flow& f) -> task<bool> {
        ++pings;
        const std::vector<std::string> ping{"PING"};  // named: see redis_call
        result<std::string> r = co_await redis_call(f, ping);
        co_return r&&* r == "+PONG";
      };
      pool p(c);
      for (int i = 0; i < 5; ++i) {
        const std::string key = "conpool:" + std::to_string(i);
        const std::string value = "value " + std::to_string(i);
        result<std::string> set = co_await p.with_connection(ep, [&key, &value](flow& f) {
          return redis_call(f, {"SET", key, value});
        });
        CHECK(set == "+OK");
        result<std::string> got = co_await p.with_connection(ep, [&key](flow& f) {
          return redis_call(f, {"GET", key});
        });
        CHECK(got == value);
      }
      CHECK(pings == 9);  // every reuse was checked
      result<std::string> info = co_await p.with_connection(ep, [](flow& f) {
        return redis_call(f, {"INFO", "clients"});
      });
      REQUIRE(info.has_value());
      CHECK(info->find("connected_clients:1\r\n") != std::string::npos);  // the server's count
      const endpoint_stats st = p.stats(ep);
      CHECK(st.total_created == 1);
      CHECK(st.total_reused == 10);
      co_await p.close_pool();
      check_stats_add_up(p);
    }(server.where()));
  });
}

TEST_CASE("servers: redis-server over its Unix socket: pooled like TCP, one client seen") {
  const std::string redis = testing::find_program("redis-server");
  if (redis.empty()) {
    MESSAGE("redis-server is not installed: skipped");
    return;
  }
  testing::for_each_ring_mode([&](ring_mode m) {
    fd_leak_check leaks;
    testing::redis_server server(redis);
    shard s({.mode = m});
    s.run([](endpoint ep) -> task<void> {
      CHECK(ep.is_unix());
      CHECK(endpoint::parse("unix://" + ep.host) == ep);
      pool p;
      for (int i = 0; i < 20; ++i) {
        const std::string key = "unix:" + std::to_string(i);
        CHECK(co_await p.with_connection(ep, [&key](flow& f) {
          return redis_call(f, {"SET", key, "v"});
        }) == "+OK");
      }
      result<std::string> info = co_await p.with_connection(ep, [](flow& f) {
        return redis_call(f, {"INFO", "clients"});
      });
      REQUIRE(info.has_value());
      CHECK(info->find("connected_clients:1\r\n") != std::string::npos);
      const endpoint_stats st = p.stats(ep);
      CHECK(st.total_created == 1);
      CHECK(st.total_reused == 20);
      co_await p.close_pool();
      check_stats_add_up(p);
    }(server.unix_where()));
  });
}
