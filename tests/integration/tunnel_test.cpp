// SPDX-License-Identifier: MIT
// Endpoints reached through real proxies on loopback: tinyproxy (HTTP CONNECT) and dante-server
// (SOCKS5, with and without a login), to nginx in plain and in TLS. Skipped, with a message,
// where a proxy is absent.
#include <arpa/inet.h>
#include <sys/socket.h>

#include "../../tools/clients/http.hpp"
#include "../support/test_server.hpp"
#include "proxies.hpp"
#include "self_signed.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::check_stats_add_up;
using testing::fd_leak_check;
using testing::refusing_port;

namespace {

// The port of the peer a connection's socket is connected to: the proxy's, not the target's.
std::uint16_t peer_port(connection& c) {
  sockaddr_in peer{};
  socklen_t size = sizeof peer;
  REQUIRE(::getpeername(c.flow().native_handle(), reinterpret_cast<sockaddr*>(&peer), &size) == 0);
  return ntohs(peer.sin_port);
}

// One GET to `ep` through the pool; checks nginx's answer and that the socket goes to the
// proxy on `proxy_port`; the connection goes back to the pool.
task<void> get_through(pool& p, const endpoint& ep, std::uint16_t proxy_port) {
  result<connection> c = co_await p.acquire(ep);
  REQUIRE_MESSAGE(c.has_value(), p.last_error(ep));
  CHECK(peer_port(*c) == proxy_port);
  REQUIRE(co_await c->flow().write_all(clients::http_get_request("localhost", "/")));
  clients::read_buffer in;
  result<clients::http_response> r = co_await clients::read_http_response(c->flow(), in);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->body == "hello from nginx\n");
  p.release(std::move(*c));
}

// What an acquire of `ep` fails with, and the pool's last error for it.
task<std::pair<std::error_code, std::string>> failure_of(pool& p, const endpoint& ep) {
  result<connection> c = co_await p.acquire(ep);
  REQUIRE(!c.has_value());
  co_return std::pair{c.error(), p.last_error(ep)};
}

endpoint via(endpoint ep, proxy_config proxy) {
  ep.proxy = std::move(proxy);
  return ep;
}

// nginx's HTTPS port through `proxy`, verified against the test's CA as "localhost".
endpoint tls_via(const testing::https_nginx& https, proxy_config proxy) {
  return via(endpoint{"127.0.0.1", https.server.port,
                      tls_config{tls_context::make({.ca_file = https.tls.cert}), "localhost"}},
             std::move(proxy));
}

}  // namespace

TEST_CASE("tunnel: HTTP CONNECT through tinyproxy, plain and TLS to nginx, pooled per proxy") {
  const std::string nginx = testing::find_program("nginx");
  auto tiny = testing::tinyproxy_server::start();
  auto https = testing::https_nginx::start();
  if (nginx.empty() || !tiny || !https) {
    MESSAGE("nginx, openssl or tinyproxy is missing: skipped");
    return;
  }
  testing::nginx_server plain(nginx, 1000);
  fd_leak_check leaks;
  shard s;
  s.run([&]() -> task<void> {
    pool p;
    const endpoint ep = via(plain.where(), tiny->proxy());
    for (int i = 0; i < 3; ++i) co_await get_through(p, ep, tiny->port);
    CHECK(p.stats(ep).total_created == 1);  // one tunnel, used three times
    CHECK(p.stats(ep).total_reused == 2);
    CHECK(p.stats(plain.where()).total_created == 0);  // the direct endpoint is another key

    // TLS to the target inside the tunnel, verified against the test's CA.
    const endpoint secure = tls_via(*https, tiny->proxy());
    co_await get_through(p, secure, tiny->port);
    co_await get_through(p, secure, tiny->port);
    CHECK(p.stats(secure).total_created == 1);

    // The proxy cannot reach the target: its reply is the error.
    refusing_port nobody;
    const endpoint dead = via(endpoint{"127.0.0.1", nobody.address.port()}, tiny->proxy());
    auto [code, said] = co_await failure_of(p, dead);
    CHECK(code == errc::tunnel_failed);
    CHECK(said == dead.to_string() + ": tunnel: proxy " + tiny->proxy().to_string() +
                      " replied \"HTTP/1.1 500 Unable to connect\"");

    // No proxy listening: the connect to the proxy fails, naming it.
    const endpoint no_proxy =
        via(plain.where(), proxy_config::parse("http://127.0.0.1:" +
                                               std::to_string(nobody.address.port())));
    std::tie(code, said) = co_await failure_of(p, no_proxy);
    CHECK(code == std::errc::connection_refused);
    CHECK(said.starts_with(no_proxy.to_string() + ": connect to proxy: "));
    co_await p.close_pool();
    check_stats_add_up(p);
  }());
}

TEST_CASE("tunnel: SOCKS5 through dante without a login, to an address and to a name") {
  const std::string nginx = testing::find_program("nginx");
  auto dante = testing::dante_server::start();
  if (nginx.empty() || !dante) {
    MESSAGE("nginx or dante-server is missing: skipped");
    return;
  }
  testing::nginx_server plain(nginx, 1000);
  fd_leak_check leaks;
  shard s;
  s.run([&]() -> task<void> {
    pool p;
    const endpoint ep = via(plain.where(), dante->proxy());
    for (int i = 0; i < 3; ++i) co_await get_through(p, ep, dante->port);
    CHECK(p.stats(ep).total_created == 1);
    // A name goes to the proxy as a name: dante resolves "localhost".
    co_await get_through(p, via(endpoint{"localhost", plain.port}, dante->proxy()), dante->port);

    refusing_port nobody;
    const endpoint dead = via(endpoint{"127.0.0.1", nobody.address.port()}, dante->proxy());
    auto [code, said] = co_await failure_of(p, dead);
    CHECK(code == errc::tunnel_failed);
    CHECK(said == dead.to_string() + ": tunnel: proxy " + dante->proxy().to_string() +
                      " could not connect to 127.0.0.1:" + std::to_string(nobody.address.port()) +
                      ": connection refused");
    co_await p.close_pool();
    check_stats_add_up(p);
  }());
}

TEST_CASE("tunnel: SOCKS5 with a username and password (RFC 1929), TLS inside; bad logins") {
  const std::string nginx = testing::find_program("nginx");
  auto dante = testing::dante_server::start(testing::dante_server::login{"cpuser", "s3cr:t@x"});
  auto https = testing::https_nginx::start();
  if (nginx.empty() || !dante || !https) {
    MESSAGE("nginx, openssl or dante-server (with root) is missing: skipped");
    return;
  }
  testing::nginx_server plain(nginx, 1000);
  fd_leak_check leaks;
  shard s;
  s.run([&]() -> task<void> {
    pool p;
    co_await get_through(p, via(plain.where(), dante->proxy()), dante->port);
    const endpoint secure = tls_via(*https, dante->proxy());
    co_await get_through(p, secure, dante->port);
    co_await get_through(p, secure, dante->port);
    CHECK(p.stats(secure).total_created == 1);

    proxy_config wrong = dante->proxy();
    wrong.password = "nope";
    const endpoint bad_login = via(plain.where(), wrong);
    auto [code, said] = co_await failure_of(p, bad_login);
    CHECK(code == errc::tunnel_failed);
    CHECK(said == bad_login.to_string() + ": tunnel: proxy " + wrong.to_string() +
                      " refused user \"cpuser\" and its password");

    const endpoint no_login = via(plain.where(), dante->proxy(false));
    std::tie(code, said) = co_await failure_of(p, no_login);
    CHECK(code == errc::tunnel_failed);
    CHECK(said == no_login.to_string() + ": tunnel: proxy " + no_login.proxy->to_string() +
                      " accepts none of the offered methods (no authentication)");
    CHECK(p.stats(bad_login).errors >= 1);
    co_await p.close_pool();
    check_stats_add_up(p);
  }());
}
