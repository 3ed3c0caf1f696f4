// SPDX-License-Identifier: MIT
// The protocol readers of tools/clients (HTTP/1.1 framing, RESP replies, target URLs), fed by a
// real peer on loopback that sends canned bytes in pieces, so every split point is exercised.
#include <doctest/doctest.h>

#include <conpool/conpool.hpp>

#include "http.hpp"
#include "redis.hpp"
#include "support/support.hpp"
#include "url.hpp"

using namespace conpool;
using namespace conpool::clients;
using namespace std::chrono_literals;
using testing::fd_leak_check;

namespace {

// Accepts one connection, reads the request, sends `pieces` one write each, then closes.
task<void> canned_peer(listener& l, std::vector<std::string> pieces) {
  result<flow> f = co_await l.accept();
  REQUIRE(f.has_value());
  std::byte request[1024];
  REQUIRE(co_await f->read_some(request));
  for (const std::string& p : pieces) REQUIRE(co_await f->write_all(p));
  (void)co_await f->close();
}

// Runs `reader(flow&, read_buffer&)` against a peer that answers with `pieces`; returns what
// the reader returned and whether unparsed bytes were left over.
template <class Reader>
auto exchange(std::vector<std::string> pieces, Reader reader) {
  fd_leak_check leaks;
  shard s;
  using R = typename decltype(reader(std::declval<flow&>(),
                                     std::declval<read_buffer&>()))::value_type;
  return s.run([](std::vector<std::string> pieces, Reader& reader) -> task<std::pair<R, std::size_t>> {
    result<listener> l = listener::open(socket_address::loopback(0));
    REQUIRE(l.has_value());
    std::pair<R, std::size_t> out{};
    co_await scoped([&](scope& sc) -> task<void> {
      sc.spawn(canned_peer(*l, std::move(pieces)));
      result<flow> f = co_await connect(l->address(), 1s);
      REQUIRE(f.has_value());
      REQUIRE(co_await f->write_all("request"));
      read_buffer in(0);  // empty: the reader must grow and compact it
      out.first = co_await reader(*f, in);
      out.second = in.data().size();
      (void)co_await f->close();
      co_await sc.join();
    });
    co_return out;
  }(std::move(pieces), reader));
}

task<result<http_response>> http_reader(flow& f, read_buffer& in) {
  return read_http_response(f, in, true);
}
task<result<resp_reply>> resp_reader(flow& f, read_buffer& in) { return read_resp_reply(f, in); }

}  // namespace

TEST_CASE("clients: HTTP Content-Length body, split inside a header and inside the body") {
  auto [r, left] = exchange({"HTTP/1.1 200 OK\r\nContent-Le", "ngth: 11\r\nServer: x\r\n\r\nhello",
                             " world"},
                            http_reader);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->body == "hello world");
  CHECK(r->body_size == 11);
  CHECK(r->keep_alive);
  CHECK(left == 0);
}

TEST_CASE("clients: HTTP chunked body with an extension and a trailer") {
  auto [r, left] = exchange({"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\nhel",
                             "lo\r\n6\r\n world\r\n0\r\nTrailer: t\r\n", "\r\n"},
                            http_reader);
  REQUIRE(r.has_value());
  CHECK(r->status == 201);
  CHECK(r->body == "hello world");
  CHECK(r->keep_alive);
  CHECK(left == 0);
}

TEST_CASE("clients: HTTP close-delimited, Connection: close, HTTP/1.0, and no-body statuses") {
  auto [eof, l1] = exchange({"HTTP/1.1 200 OK\r\n\r\nuntil", " the end"}, http_reader);
  REQUIRE(eof.has_value());
  CHECK(eof->body == "until the end");
  CHECK_FALSE(eof->keep_alive);

  auto [closing, l2] =
      exchange({"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"}, http_reader);
  REQUIRE(closing.has_value());
  CHECK_FALSE(closing->keep_alive);

  auto [old, l3] = exchange({"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"}, http_reader);
  REQUIRE(old.has_value());
  CHECK_FALSE(old->keep_alive);

  auto [kept, l4] = exchange(
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"}, http_reader);
  REQUIRE(kept.has_value());
  CHECK(kept->keep_alive);

  auto [none, l5] = exchange({"HTTP/1.1 204 No Content\r\n\r\n"}, http_reader);
  REQUIRE(none.has_value());
  CHECK(none->status == 204);
  CHECK(none->body.empty());
  CHECK(none->keep_alive);
}

TEST_CASE("clients: HTTP interim 1xx responses are skipped; a tiny buffer grows") {
  auto [r, left] = exchange({"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
                            http_reader);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->body == "ok");
  CHECK(left == 0);
}

TEST_CASE("clients: RESP bulk strings over Redis's 512 MB are refused") {
  auto [big, l1] = exchange({"$999999999999\r\n"}, resp_reader);
  REQUIRE_FALSE(big.has_value());
  CHECK(big.error() == std::errc::bad_message);
}

TEST_CASE("clients: HTTP errors: malformed status line, bad chunk size, body cut short") {
  auto [bad, l1] = exchange({"SMTP ready\r\n\r\n"}, http_reader);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == std::errc::bad_message);

  auto [chunk, l2] = exchange({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
                              http_reader);
  REQUIRE_FALSE(chunk.has_value());
  CHECK(chunk.error() == std::errc::bad_message);

  auto [cut, l3] = exchange({"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"}, http_reader);
  REQUIRE_FALSE(cut.has_value());
  CHECK(cut.error() == errc::end_of_stream);
}

TEST_CASE("clients: HTTP request line and Host header") {
  CHECK(http_get_request("127.0.0.1:8080", "/a?b=c") ==
        "GET /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
}

TEST_CASE("clients: RESP replies of every kind, split anywhere") {
  auto [ok, l1] = exchange({"+O", "K\r\n"}, resp_reader);
  REQUIRE(ok.has_value());
  CHECK(ok->kind == '+');
  CHECK(ok->text == "OK");

  auto [err, l2] = exchange({"-ERR wrong type\r\n"}, resp_reader);
  REQUIRE(err.has_value());
  CHECK(err->kind == '-');
  CHECK(err->text == "ERR wrong type");

  auto [num, l3] = exchange({":-42\r\n"}, resp_reader);
  REQUIRE(num.has_value());
  CHECK(num->integer == -42);

  auto [bulk, l4] = exchange({"$11\r\nhello", " world\r", "\n"}, resp_reader);
  REQUIRE(bulk.has_value());
  CHECK(bulk->text == "hello world");
  CHECK(l4 == 0);

  auto [nil, l5] = exchange({"$-1\r\n"}, resp_reader);
  REQUIRE(nil.has_value());
  CHECK(nil->nil);

  auto [array, l6] = exchange({"*3\r\n$1\r\na\r\n:1\r\n*1\r\n+x\r\n"}, resp_reader);
  REQUIRE(array.has_value());
  CHECK(array->kind == '*');
  CHECK(array->integer == 3);
  CHECK(l6 == 0);

  auto [junk, l7] = exchange({"?what\r\n"}, resp_reader);
  REQUIRE_FALSE(junk.has_value());
  CHECK(junk.error() == std::errc::bad_message);
}

TEST_CASE("clients: RESP command encoding") {
  const std::string_view args[] = {"SET", "k", "two words"};
  CHECK(resp_command(args) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\ntwo words\r\n");
}

TEST_CASE("clients: target URLs, and errors that name the target and the fault") {
  const url h = url::parse("http://127.0.0.1:8080/path?q");
  CHECK(h.scheme == "http");
  CHECK(h.host == "127.0.0.1");
  CHECK(h.port == 8080);
  CHECK(h.path == "/path?q");
  CHECK(url::parse("redis://localhost").port == 6379);
  const url v6 = url::parse("tcp://[::1]:7000");
  CHECK(v6.host == "::1");
  CHECK(v6.authority() == "[::1]:7000");
  CHECK(url::parse("http://h").to_string() == "http://h:80/");
  CHECK_THROWS_WITH_AS(url::parse("tcp://127.0.0.1"), doctest::Contains("no port"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("127.0.0.1:80"), doctest::Contains("\"127.0.0.1:80\""),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("http://h:99999/"), doctest::Contains("99999"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("tcp://[::1:80"), doctest::Contains("unclosed"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("redis://h:"), doctest::Contains("empty port"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("http://::1/"), doctest::Contains("brackets"),
                       std::invalid_argument);
  // Found by tests/fuzz/url_fuzz: "[x]" printed as "x:80", which no longer read back the same.
  CHECK_THROWS_WITH_AS(url::parse("http://[[x]:80/"), doctest::Contains("brackets hold only IPv6"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(url::parse("http://a b/"), doctest::Contains("no space"),
                       std::invalid_argument);
}
