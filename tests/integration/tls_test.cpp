// SPDX-License-Identifier: MIT
// TLS flows against a real peer: `openssl s_server` with certificates the test makes with the
// openssl CLI in a temporary directory (a CA, a server certificate for localhost/127.0.0.1,
// an expired one, and a second CA nobody trusts). The handshake and every record go through
// the shard's io_uring.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <conpool/conpool.hpp>

#include "../support/support.hpp"
#include "http.hpp"
#include "peer_process.hpp"
#include "self_signed.hpp"
#include "process.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using testing::fd_leak_check;

namespace {

// Runs openssl with `args`; the test fails with its output when it does.
void openssl(const std::string& openssl_path, const std::filesystem::path& dir,
             std::vector<std::string> args) {
  std::vector<std::string> argv = {openssl_path};
  argv.insert(argv.end(), args.begin(), args.end());
  // openssl ca resolves its database paths from the working directory: run it in `dir`.
  std::vector<std::string> shell = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir.string()};
  shell.insert(shell.end(), argv.begin(), argv.end());
  const bench::program_result r = bench::run_program(shell);
  REQUIRE_MESSAGE(r.status == 0, "openssl ", args[0], " failed: ", r.err);
}

// The test's own PKI, made once per process.
struct pki {
  testing::temp_dir dir;
  std::string openssl_path = testing::find_program("openssl");
  std::string file(const char* name) const { return (dir.path / name).string(); }

  pki() {
    if (openssl_path.empty()) return;
    const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                         "-nodes"};
    auto req = [&](std::vector<std::string> extra) {
      std::vector<std::string> a = {"req"};
      a.insert(a.end(), ec.begin(), ec.end());
      a.insert(a.end(), extra.begin(), extra.end());
      openssl(openssl_path, dir.path, a);
    };
    req({"-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=conpool test CA"});
    req({"-x509", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "30", "-subj",
         "/CN=nobody trusts me"});
    req({"-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,DNS:conpool.test,IP:127.0.0.1"});
    req({"-keyout", "old.key", "-out", "old.csr", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    req({"-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=conpool client"});
    std::filesystem::create_directory(dir.path / "db");
    std::ofstream(dir.path / "db/index.txt");
    std::ofstream(dir.path / "db/serial") << "1000\n";
    std::ofstream(dir.path / "ca.cnf") << "[ca]\ndefault_ca = test\n[test]\ndatabase = db/index.txt\n"
                                          "serial = db/serial\nnew_certs_dir = db\n"
                                          "default_md = sha256\npolicy = any\nunique_subject = no\n"
                                          "copy_extensions = copy\n[any]\ncommonName = supplied\n";
    const std::vector<std::string> sign = {"ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem",
                                           "-keyfile", "ca.key"};
    auto signed_by_ca = [&](std::vector<std::string> extra) {
      std::vector<std::string> a = sign;
      a.insert(a.end(), extra.begin(), extra.end());
      openssl(openssl_path, dir.path, a);
    };
    signed_by_ca({"-in", "server.csr", "-out", "server.pem", "-days", "30"});
    signed_by_ca({"-in", "client.csr", "-out", "client.pem", "-days", "30"});
    signed_by_ca({"-in", "old.csr", "-out", "old.pem", "-startdate", "20200101000000Z", "-enddate",
                  "20200201000000Z"});
  }
};

const pki& shared_pki() {
  static pki p;
  return p;
}

// `openssl s_server` answering each line reversed, with `cert`/`key` and `extra` options.
struct tls_peer {
  std::uint16_t port = testing::free_port();
  testing::peer_process process;
  /// `log`: where s_server's output goes (default: nowhere).
  tls_peer(const pki& k, const char* cert, const char* key, std::vector<std::string> extra = {},
           const std::string& log = "/dev/null")
      : process(argv(k, cert, key, port, std::move(extra), log), port) {}

  static std::vector<std::string> argv(const pki& k, const char* cert, const char* key,
                                       std::uint16_t port, std::vector<std::string> extra,
                                       const std::string& log) {
    std::vector<std::string> a = {"/bin/sh", "-c", "exec \"$@\" >'" + log + "' 2>&1", "sh",
                                  k.openssl_path, "s_server", "-quiet", "-rev", "-accept",
                                  "127.0.0.1:" + std::to_string(port), "-cert", k.file(cert),
                                  "-key", k.file(key)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

// Connects to `port`, runs the handshake for `name` with `ctx`, then one reversed line.
struct outcome {
  std::error_code handshake;
  std::string reason;
  std::string reply;
  std::string alpn;
  std::error_code exchange;  // the write or read after the handshake
};
outcome talk(std::uint16_t port, std::shared_ptr<tls_context> ctx, std::string name) {
  fd_leak_check leaks;
  shard s;
  return s.run([](std::uint16_t port, std::shared_ptr<tls_context> ctx,
                  std::string name) -> task<outcome> {
    outcome o;
    result<flow> f = co_await connect(socket_address::loopback(port), 5s);
    REQUIRE(f.has_value());
    result<void> hs = co_await f->start_tls(*ctx, name);
    CHECK(f->is_tls());
    if (!hs) {
      o.handshake = hs.error();
      o.reason = f->tls_reason();
      (void)co_await f->close();
      co_return o;
    }
    std::string back(10, '\0');
    result<void> io = co_await f->write_all("hello tls\n");
    if (io) io = co_await f->read_exact(std::as_writable_bytes(std::span(back)));
    if (!io) {
      o.exchange = io.error();
      o.reason = f->tls_reason();
      (void)co_await f->close();
      co_return o;
    }
    o.reply = back;
    o.alpn = f->tls_alpn();
    REQUIRE(co_await f->close());
    co_return o;
  }(port, std::move(ctx), std::move(name)));
}

bool have_openssl() {
  if (testing::find_program("openssl").empty()) {
    MESSAGE("openssl is not installed: skipped");
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("tls: verified against the right CA and name; bytes go both ways") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer server(k, "server.pem", "server.key");
  const outcome o = talk(server.port, tls_context::make({.ca_file = k.file("ca.pem")}), "localhost");
  CHECK_MESSAGE(!o.handshake, o.reason);
  CHECK(o.reply == "slt olleh\n");
}

TEST_CASE("tls: an unknown CA, a wrong name and an expired certificate each fail verification") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer server(k, "server.pem", "server.key");
  tls_peer expired(k, "old.pem", "old.key");

  const outcome unknown =
      talk(server.port, tls_context::make({.ca_file = k.file("other-ca.pem")}), "localhost");
  CHECK(unknown.handshake == errc::tls_verify_failed);
  CHECK_FALSE(unknown.reason.empty());

  const outcome wrong_name =
      talk(server.port, tls_context::make({.ca_file = k.file("ca.pem")}), "wrong.example");
  CHECK(wrong_name.handshake == errc::tls_verify_failed);

  const outcome old = talk(expired.port, tls_context::make({.ca_file = k.file("ca.pem")}), "localhost");
  CHECK(old.handshake == errc::tls_verify_failed);
  CHECK(unknown.reason != old.reason);  // each says what it found

  MESSAGE("unknown CA: ", unknown.reason, "; wrong name: ", wrong_name.reason,
          "; expired: ", old.reason);
}

TEST_CASE("tls: verification is off only when asked for, by name") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer server(k, "server.pem", "server.key");
  const outcome o = talk(server.port,
                         tls_context::make({.ca_file = k.file("other-ca.pem"),
                                            .insecure_skip_verify = true}),
                         "wrong.example");
  CHECK(!o.handshake);
  CHECK(o.reply == "slt olleh\n");
}

TEST_CASE("tls: bad context options are named before any I/O") {
  CHECK_THROWS_WITH_AS(tls_context::make({.ca_file = "/nonexistent/ca.pem"}),
                       doctest::Contains("ca_file \"/nonexistent/ca.pem\""), std::invalid_argument);
  CHECK_THROWS_WITH_AS(tls_context::make({.cert_file = "/tmp/c.pem"}),
                       doctest::Contains("needs both cert_file and key_file"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(tls_context::make({.alpn = {""}}), doctest::Contains("alpn"),
                       std::invalid_argument);
  // The system's CA bundle by default.
  CHECK(tls_context::make()->options().insecure_skip_verify == false);
}

TEST_CASE("tls: SNI reaches the server, ALPN is negotiated") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  // This server refuses any name but localhost (a fatal unrecognized_name alert).
  tls_peer strict(k, "server.pem", "server.key",
                  {"-servername", "localhost", "-cert2", k.file("server.pem"), "-key2",
                   k.file("server.key"), "-servername_fatal"});
  const outcome right =
      talk(strict.port, tls_context::make({.ca_file = k.file("ca.pem")}), "localhost");
  CHECK_MESSAGE(!right.handshake, right.reason);
  CHECK(right.reply == "slt olleh\n");
  const outcome other = talk(strict.port,
                             tls_context::make({.ca_file = k.file("ca.pem"),
                                                .insecure_skip_verify = true}),
                             "other.example");
  CHECK(other.handshake == errc::tls_handshake_failed);
  MESSAGE("wrong SNI: ", other.reason);

  tls_peer alpn(k, "server.pem", "server.key", {"-alpn", "h2,http/1.1"});
  const outcome h2 = talk(
      alpn.port, tls_context::make({.ca_file = k.file("ca.pem"), .alpn = {"h2", "http/1.1"}}),
      "localhost");
  CHECK_MESSAGE(!h2.handshake, h2.reason);
  CHECK(h2.alpn == "h2");
  const outcome h1 = talk(
      alpn.port, tls_context::make({.ca_file = k.file("ca.pem"), .alpn = {"http/1.1"}}),
      "localhost");
  CHECK(h1.alpn == "http/1.1");
  const outcome none =
      talk(alpn.port, tls_context::make({.ca_file = k.file("ca.pem")}), "localhost");
  CHECK(none.alpn.empty());
}

TEST_CASE("tls: mutual TLS works with the client certificate and fails without it") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer server(k, "server.pem", "server.key", {"-Verify", "1", "-CAfile", k.file("ca.pem")});
  const outcome with = talk(server.port,
                            tls_context::make({.ca_file = k.file("ca.pem"),
                                               .cert_file = k.file("client.pem"),
                                               .key_file = k.file("client.key")}),
                            "localhost");
  CHECK_MESSAGE(!with.handshake, with.reason);
  CHECK(with.reply == "slt olleh\n");

  const outcome without = talk(server.port, tls_context::make({.ca_file = k.file("ca.pem")}),
                               "localhost");
  // TLS 1.3: the client has finished its side before the server refuses, so the refusal comes
  // as an alert on the first read rather than as a handshake error.
  CHECK(without.reply.empty());
  CHECK((without.handshake || without.exchange));
  CHECK_FALSE(without.reason.empty());
  MESSAGE("without a client certificate: ", without.reason);
}

namespace {

task<std::string> echo_line(pool& p, const endpoint& ep) {
  result<connection> c = co_await p.acquire(ep);
  REQUIRE_MESSAGE(c.has_value(), describe(c.error(), ep, "acquire"));
  REQUIRE(co_await c->flow().write_all("pooled tls\n"));
  std::string back(11, '\0');
  REQUIRE(co_await c->flow().read_exact(std::as_writable_bytes(std::span(back))));
  p.release(std::move(*c));
  co_return back;
}

void check_stats_add_up_tls(const pool& p) {
  for (const auto& [ep, st] : p.all_stats()) {
    CHECK(st.total_created == st.total_closed + st.active + st.idle);
  }
}

template <class Pred>
task<bool> turns_until(Pred done) {
  for (int i = 0; i < 2000 && !done(); ++i) (void)co_await sleep_for(1ms);
  co_return done();
}

}  // namespace

TEST_CASE("tls: pooled: tickets after the handshake keep it, reuse, resumption, eviction") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  fd_leak_check leaks;
  auto ctx = tls_context::make({.ca_file = k.file("ca.pem")});
  std::optional<tls_peer> server(std::in_place, k, "server.pem", "server.key");
  const endpoint ep{"127.0.0.1", server->port, tls_config{ctx, "localhost"}};
  shard s;
  s.run([](const endpoint& ep, std::optional<tls_peer>& server) -> task<void> {
    pool p;
    // Opened and parked idle at once: the server's TLS 1.3 NewSessionTickets reach the idle
    // watcher, which must take them as records, not as stray bytes.
    REQUIRE(co_await p.warm_endpoint(ep, 1));
    (void)co_await sleep_for(100ms);  // no event says "the tickets are in": give them time
    CHECK(p.stats(ep).idle == 1);
    CHECK(p.stats(ep).total_closed == 0);
    for (int i = 0; i < 5; ++i) CHECK(co_await echo_line(p, ep) == "slt deloop\n");
    CHECK(p.stats(ep).total_created == 1);
    CHECK(p.stats(ep).total_reused == 4);  // the warmed connection's first lease is no reuse

    // A new connection to the endpoint resumes the session instead of a full handshake.
    p.close_idle_connections(ep);
    result<connection> c = co_await p.acquire(ep);
    REQUIRE(c.has_value());
    CHECK(p.stats(ep).total_created == 2);
    CHECK(c->flow().tls_resumed());
    p.release(std::move(*c));

    // Another context, or another server name: another endpoint, never the same connections.
    // (s_server serves one connection at a time: each is closed before the next is opened.)
    p.close_idle_connections(ep);
    auto other_ctx = tls_context::make(ep.tls->context->options());
    const endpoint other{ep.host, ep.port, tls_config{other_ctx, "localhost"}};
    const endpoint other_name{ep.host, ep.port, tls_config{ep.tls->context, "conpool.test"}};
    CHECK(co_await echo_line(p, other) == "slt deloop\n");
    p.close_idle_connections(other);
    CHECK(co_await echo_line(p, other_name) == "slt deloop\n");  // the certificate has both
    p.close_idle_connections(other_name);
    CHECK(p.stats(other).total_created == 1);
    CHECK(p.stats(other_name).total_created == 1);
    CHECK(p.stats(ep).total_created == 2);
    result<connection> third = co_await p.acquire(ep);  // a third, resumed again
    REQUIRE(third.has_value());
    CHECK(third->flow().tls_resumed());
    p.release(std::move(*third));
    CHECK(p.stats(ep).total_created == 3);

    // The server goes away: its close reaches the idle watcher, which evicts the connection.
    server.reset();
    CHECK(co_await turns_until([&] { return p.stats(ep).idle == 0; }));
    CHECK(p.stats(ep).total_closed == 3);
    CHECK(p.stats(ep).errors == 0);
    co_await p.close_pool();
  }(ep, server));
}

TEST_CASE("tls: no SNI for an IP literal (RFC 6066 section 3); a host name is sent") {
  // The ClientHello is plaintext: a listener of the test's own reads it and hangs up.
  auto hello_for = [](std::string name) {
    fd_leak_check leaks;
    shard s;
    return s.run([](std::string name) -> task<std::string> {
      listener l = *listener::open(socket_address::loopback(0));
      std::string hello;
      co_await scoped([&](scope& sc) -> task<void> {
        sc.spawn([](listener& l, std::string& hello) -> task<void> {
          result<flow> f = co_await l.accept();
          REQUIRE(f.has_value());
          std::array<std::byte, 4096> buf{};
          result<std::size_t> n = co_await f->read_some(buf);
          if (n) hello.assign(reinterpret_cast<const char*>(buf.data()), *n);
          (void)co_await f->close();
        }(l, hello));
        auto ctx = tls_context::make({.insecure_skip_verify = true});
        result<flow> f = co_await connect(l.address(), 5s);
        REQUIRE(f.has_value());
        CHECK(!co_await f->start_tls(*ctx, name));  // the listener hangs up
        (void)co_await f->close();
        co_await sc.join();
      });
      co_return hello;
    }(std::move(name)));
  };
  const std::string v4 = hello_for("127.0.0.1");
  const std::string v6 = hello_for("::1");
  const std::string named = hello_for("localhost");
  REQUIRE(!v4.empty());
  CHECK(v4.find("127.0.0.1") == std::string::npos);
  CHECK(v6.find("::1") == std::string::npos);
  CHECK(named.find("localhost") != std::string::npos);
}

TEST_CASE("tls: the pool says close_notify when it closes a TLS connection") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  testing::temp_dir logs;
  const std::filesystem::path log = logs.path / "s_server.log";
  // -msg: s_server logs every TLS message it receives, alerts included.
  tls_peer server(k, "server.pem", "server.key", {"-msg"}, log.string());
  fd_leak_check leaks;
  auto ctx = tls_context::make({.ca_file = k.file("ca.pem")});
  const endpoint ep{"127.0.0.1", server.port, tls_config{ctx, "localhost"}};
  auto logged_close_notify = [&] {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return text.str().find("close_notify") != std::string::npos;
  };
  shard s;
  s.run([](const endpoint& ep, decltype(logged_close_notify)& seen) -> task<void> {
    pool p;
    CHECK(co_await echo_line(p, ep) == "slt deloop\n");
    CHECK_FALSE(seen());
    p.close_idle_connections(ep);  // the pool's own close: close_notify, then the socket
    // s_server writes its log as the alert arrives; nothing here can await that but the file.
    CHECK(co_await turns_until([&] { return seen(); }));
    co_await p.close_pool();
    check_stats_add_up_tls(p);
  }(ep, logged_close_notify));
}

TEST_CASE("tls: the pool's error names the endpoint and carries wolfSSL's reason") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer expired(k, "old.pem", "old.key");
  fd_leak_check leaks;
  auto ctx = tls_context::make({.ca_file = k.file("ca.pem")});
  const endpoint ep{"127.0.0.1", expired.port, tls_config{ctx, "localhost"}};
  shard s;
  s.run([](const endpoint& ep) -> task<void> {
    pool p;
    CHECK(p.last_error(ep).empty());
    result<connection> c = co_await p.acquire(ep);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error() == errc::tls_verify_failed);
    const std::string why = p.last_error(ep);
    CHECK(why.find(ep.to_string()) != std::string::npos);
    CHECK(why.find("TLS peer verification failed") != std::string::npos);
    CHECK(why.find("ASN date error") != std::string::npos);
    MESSAGE(why);
    CHECK(p.stats(ep).errors == 1);
    co_await p.close_pool();
  }(ep));
}

TEST_CASE("tls: nginx sees the pool's second new connection resume the session") {
  const std::unique_ptr<testing::https_nginx> https = testing::https_nginx::start();
  if (!https) return;
  const testing::nginx_server& server = https->server;
  const std::string& cert = https->tls.cert;
  testing::fd_leak_check leaks;
  const endpoint ep{"127.0.0.1", server.port,
                    tls_config{tls_context::make({.ca_file = cert}), "localhost"}};
  shard s;
  s.run([](const endpoint& ep) -> task<void> {
    pool p;
    for (int i = 0; i < 3; ++i) {
      if (i > 0) p.close_idle_connections(ep);  // each GET on a new connection
      result<connection> c = co_await p.acquire(ep);
      REQUIRE(c.has_value());
      REQUIRE(co_await c->flow().write_all("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
      clients::read_buffer in;
      result<clients::http_response> r = co_await clients::read_http_response(c->flow(), in);
      REQUIRE(r.has_value());
      CHECK(r->status == 200);
      CHECK(c->flow().tls_resumed() == (i > 0));
      p.release(std::move(*c));
    }
    co_await p.close_pool();
  }(ep));
  // nginx's own record: a full handshake, then two resumed sessions. It logs a request after
  // answering it; nothing signals that but the file, so read it until three lines are there.
  std::vector<std::string> reused;
  for (int i = 0; i < 2000 && reused.size() < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(1ms);
    reused.clear();
    std::ifstream log(server.log());
    for (std::string line; std::getline(log, line);) {
      reused.push_back(line.substr(line.rfind('=') + 1));
    }
  }
  CHECK(reused == std::vector<std::string>{".", "r", "r"});
}

TEST_CASE("tls: TLS 1.2 is accepted by default; min_version tls13 refuses it") {
  if (!have_openssl()) return;
  const pki& k = shared_pki();
  tls_peer old_server(k, "server.pem", "server.key", {"-tls1_2"});
  const outcome by_default =
      talk(old_server.port, tls_context::make({.ca_file = k.file("ca.pem")}), "localhost");
  CHECK_MESSAGE(!by_default.handshake, by_default.reason);
  CHECK(by_default.reply == "slt olleh\n");
  const outcome strict = talk(
      old_server.port,
      tls_context::make({.min_version = tls_version::tls13, .ca_file = k.file("ca.pem")}),
      "localhost");
  CHECK(strict.handshake == errc::tls_handshake_failed);
  MESSAGE("TLS 1.2 server, TLS 1.3 required: ", strict.reason);
}
