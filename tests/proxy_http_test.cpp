// SPDX-License-Identifier: MIT
// conpool-proxy's HTTP/1.1: request and response heads parsed (and refused where leniency
// would let a request be smuggled), body framing as RFC 9112 §6.3 decides it, chunked bodies
// followed byte by byte at every split, and heads rewritten for the next hop (RFC 9110 §7.6.1).
#include <doctest/doctest.h>

#include <string>

#include "http1.hpp"

using namespace conpool::proxy;

namespace {

request_head request(const std::string& text, parse_status expected = parse_status::done) {
  request_head r;
  CHECK(parse_request(text, 16384, r) == expected);
  return r;
}

}  // namespace

TEST_CASE("proxy http: a request head, its fields, framing and keep-alive") {
  const std::string text =
      "\r\nPOST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n"
      "X-Thing:  spaced value \t\r\n\r\nhello";
  request_head r;
  REQUIRE(parse_request(text, 16384, r) == parse_status::done);
  CHECK(r.method == "POST");
  CHECK(r.target == "/a?b=1");
  CHECK(r.minor == 1);
  CHECK(r.host == "example.com");
  CHECK(r.body == framing::length);
  CHECK(r.length == 5);
  CHECK(r.keep_alive);
  CHECK(find_field(r.fields, "x-thing") == "spaced value");
  CHECK(text.substr(r.head_size) == "hello");
  CHECK(!r.idempotent());

  CHECK(request("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n").keep_alive == false);
  CHECK(request("GET / HTTP/1.0\r\n\r\n").keep_alive == false);
  CHECK(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  CHECK(request("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").body == framing::chunked);
  CHECK(request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").body == framing::none);
  CHECK(request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n").length == 7);
  CHECK(request("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").idempotent());
  // Incomplete until the empty line; too large past the limit.
  request("GET / HTTP/1.1\r\nHost: a\r\n", parse_status::incomplete);
  request_head big;
  CHECK(parse_request("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'x'), 256, big) ==
        parse_status::too_large);
}

TEST_CASE("proxy http: requests that could be smuggled or are malformed are refused, naming why") {
  const struct {
    const char* text;
    const char* why;
  } bad[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       "both Content-Length and Transfer-Encoding"},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
       "different values"},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n", "not a number"},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", "not a number"},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "other than chunked"},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "other than chunked"},
      {"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "other than chunked"},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed field line"},
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "obs-fold"},
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF"},
      {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "bare CR"},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", "control byte"},
      {"GET / HTTP/1.1\r\n\r\n", "no Host"},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host given twice"},
      {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "request line"},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "not HTTP/1.0 or HTTP/1.1"},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.text);
    request_head r;
    CHECK(parse_request(b.text, 16384, r) == parse_status::bad);
    CHECK(r.why.find(b.why) != std::string::npos);
  }
}

TEST_CASE("proxy http: response framing: HEAD, 1xx, 204, 304, chunked, length, until close") {
  const auto framing_of = [](const std::string& text, bool to_head = false) {
    response_head r;
    REQUIRE(parse_response(text, 65536, to_head, r) == parse_status::done);
    return r;
  };
  const std::string ok_text = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n";
  response_head ok = framing_of(ok_text);  // its views point into ok_text
  CHECK(ok.status == 200);
  CHECK(ok.reason == "OK");
  CHECK(ok.body == framing::length);
  CHECK(ok.keep_alive);
  CHECK(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true).body == framing::none);
  CHECK(framing_of("HTTP/1.1 204 No Content\r\n\r\n").body == framing::none);
  CHECK(framing_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").body == framing::none);
  CHECK(framing_of("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").body == framing::none);
  CHECK(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").body == framing::chunked);
  const response_head eof = framing_of("HTTP/1.1 200 OK\r\n\r\n");
  CHECK(eof.body == framing::until_close);
  CHECK(!eof.keep_alive);
  const response_head both = framing_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(both.body == framing::chunked);  // Transfer-Encoding wins; the connection closes after
  CHECK(!both.keep_alive);
  CHECK(!framing_of("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
  CHECK(framing_of("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n").status == 500);
  response_head bad;
  CHECK(parse_response("HTTP/1.1 20 OK\r\n\r\n", 65536, false, bad) == parse_status::bad);
  CHECK(parse_response("ICY 200 OK\r\n\r\n", 65536, false, bad) == parse_status::bad);
}

TEST_CASE("proxy http: a chunked body's end is found at every split, extensions and trailers included") {
  const std::string body = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: yes\r\n\r\n";
  const std::string after = "GET /next HTTP/1.1\r\n";
  const std::string stream = body + after;
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    CAPTURE(split);
    chunked_scanner s;
    std::size_t taken = s.feed(std::string_view(stream).substr(0, split));
    if (s.status() == chunked_scanner::state::more) taken += s.feed(std::string_view(stream).substr(split));
    CHECK(s.status() == chunked_scanner::state::done);
    CHECK(taken == body.size());
  }
  for (const char* broken : {"x\r\n", "5\r\nhelloX\r\n", "5\nhello", "\r\n", "10000000000000000\r\n",
                             "0\r\nTrailer\n", "5 xyz\r\n"}) {
    CAPTURE(broken);
    chunked_scanner s;
    (void)s.feed(broken);
    CHECK(s.status() == chunked_scanner::state::bad);
  }
}

TEST_CASE("proxy http: heads for the next hop drop hop-by-hop fields and add Via and X-Forwarded-For") {
  request_head r;
  const std::string text =
      "GET /p HTTP/1.1\r\nHost: origin\r\nConnection: close, X-Private\r\nX-Private: secret\r\n"
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n"
      "X-Forwarded-For: 10.0.0.1\r\nVia: 1.0 earlier\r\nExpect: 100-continue\r\nAccept: */*\r\n\r\n";
  REQUIRE(parse_request(text, 16384, r) == parse_status::done);
  std::string out;
  write_upstream_request(r, "127.0.0.9", "upstream:80", out);
  CHECK(out ==
        "GET /p HTTP/1.1\r\nHost: origin\r\nAccept: */*\r\nVia: 1.0 earlier, 1.1 conpool-proxy\r\n"
        "X-Forwarded-For: 10.0.0.1, 127.0.0.9\r\n\r\n");
  // HTTP/1.0 without Host: the upstream's, and it goes as HTTP/1.0 asking for keep-alive (the
  // response then never comes chunked); a chunked body keeps its coding.
  request_head old;
  REQUIRE(parse_request("GET / HTTP/1.0\r\n\r\n", 16384, old) == parse_status::done);
  out.clear();
  write_upstream_request(old, "::1", "upstream:80", out);
  CHECK(out == "GET / HTTP/1.0\r\nHost: upstream:80\r\nVia: 1.0 conpool-proxy\r\nX-Forwarded-For: ::1\r\n"
               "Connection: keep-alive\r\n\r\n");
  request_head chunked;
  REQUIRE(parse_request("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 16384, chunked) ==
          parse_status::done);
  out.clear();
  write_upstream_request(chunked, "c", "u", out);
  CHECK(out.ends_with("Transfer-Encoding: chunked\r\n\r\n"));

  response_head resp;
  REQUIRE(parse_response("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\n"
                         "Transfer-Encoding: chunked\r\nServer: nginx\r\n\r\n",
                         65536, false, resp) == parse_status::done);
  out.clear();
  write_client_response(resp, false, 1, out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nVia: 1.1 conpool-proxy\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n");
  // A Connection field cannot take the framing or Host away: the next hop gets one canonical
  // Content-Length (a smuggling attempt otherwise: the body would read as a second request).
  request_head sneaky;
  REQUIRE(parse_request("POST / HTTP/1.1\r\nHost: a\r\nConnection: close, Content-Length, Host\r\n"
                        "Content-Length: 5\r\n\r\nhello",
                        16384, sneaky) == parse_status::done);
  out.clear();
  write_upstream_request(sneaky, "c", "u", out);
  CHECK(out == "POST / HTTP/1.1\r\nHost: a\r\nVia: 1.1 conpool-proxy\r\nX-Forwarded-For: c\r\n"
               "Content-Length: 5\r\n\r\n");
  // Both Content-Length and chunked from the upstream: the client gets chunked alone; a
  // HEAD's length is passed on; an HTTP/1.0 client kept hears keep-alive.
  response_head both;
  REQUIRE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                         65536, false, both) == parse_status::done);
  out.clear();
  write_client_response(both, true, 1, out);
  CHECK(out.find("Content-Length") == std::string::npos);
  response_head head;
  REQUIRE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n", 65536, true, head) ==
          parse_status::done);
  out.clear();
  write_client_response(head, true, 0, out);
  CHECK(out == "HTTP/1.1 200 OK\r\nVia: 1.1 conpool-proxy\r\nContent-Length: 17\r\n"
               "Connection: keep-alive\r\n\r\n");
  request_head empty_length;
  CHECK(parse_request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: ,\r\n\r\n", 16384, empty_length) ==
        parse_status::bad);
  request_head crlfs;
  std::string many;
  for (int i = 0; i < 20; ++i) many += "\r\n";
  CHECK(parse_request(many + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 16384, crlfs) == parse_status::bad);

  const std::string e = error_response(502, "127.0.0.1:1: Connection refused", true);
  CHECK(e.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(e.find("Connection: close") == std::string::npos);
  CHECK(e.ends_with("\r\n\r\n502 Bad Gateway: 127.0.0.1:1: Connection refused\n"));
}
