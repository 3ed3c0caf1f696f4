// SPDX-License-Identifier: MIT
// endpoint and proxy_config syntax: what parses, what prints, what is refused and how it is said.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include <conpool/endpoint.hpp>
#include <conpool/proxy.hpp>

using namespace conpool;
using namespace std::string_literals;

namespace {

// What endpoint::parse says about `url` (empty when it parses).
std::string refusal(std::string_view url) {
  try {
    (void)endpoint::parse(url);
    return {};
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

}  // namespace

TEST_CASE("endpoint: tcp://, tls:// and unix:// URLs parse, print and read back") {
  for (const char* url : {"tcp://127.0.0.1:6379", "tls://example.com:443", "tcp://[::1]:80",
                          "tcp://[fe80::1%eth0]:8080", "tcp://my_host-1.example.:1",
                          "tcp://localhost:65535", "unix:///run/redis/redis.sock",
                          "unix://@conpool"}) {
    CAPTURE(url);
    const endpoint e = endpoint::parse(url);
    CHECK(e.problem().empty() == !e.tls.has_value());  // tls:// still needs its context
    CHECK(e.to_url() == url);
    CHECK(endpoint::parse(e.to_url()) == e);
  }
  CHECK(endpoint::parse("tcp://h:080") == endpoint{"h", 80});  // read back as tcp://h:80

  const endpoint u = endpoint::parse("unix:///tmp/x.sock");
  CHECK(u.is_unix());
  CHECK(u == endpoint::unix_socket("/tmp/x.sock"));
  CHECK(u.to_string() == "unix:///tmp/x.sock");
  CHECK(!endpoint{"127.0.0.1", 80}.is_unix());
  CHECK(endpoint{"::1", 80}.to_string() == "[::1]:80");
}

TEST_CASE("endpoint: hosts that are not names or addresses are refused, naming the byte") {
  struct bad {
    std::string url;
    std::string said;
  };
  const bad cases[] = {
      {"tcp://a b:80", "' ' (byte 2) is not allowed in a host name"},
      {"tcp://a\tb:80", "\\x09 (byte 2)"},
      {"tcp://a\r\nb:80", "\\x0d (byte 2)"},
      {"tcp://127.0.0.1\0.evil.example:80"s, "host \"127.0.0.1\\x00.evil.example\": \\x00 (byte 10)"},
      {"tcp://user@host:80", "'@' (byte 5)"},
      {"tcp://h/x:80", "'/' (byte 2)"},
      {"tcp://h?x:80", "'?' (byte 2)"},
      {"tcp://h#x:80", "'#' (byte 2)"},
      {"tcp://h%41:80", "'%' (byte 2)"},
      {"tcp://h\\x:80", "'\\' (byte 2)"},
      {"tcp://h]:80", "']' (byte 2)"},
      {"tcp://[[1]:8", "only IPv6 literals go in brackets"},
      {"tcp://[127.0.0.1]:80", "only IPv6 literals go in brackets"},
      {"tcp://[::1:80", "without a closing ']'"},
      {"tcp://a..b:80", "an empty label"},
      {"tcp://-a.b:80", "starts or ends with '-'"},
      {"tcp://" + std::string(64, 'a') + ".b:80", "a label of 64 bytes"},
      {"tcp://" + std::string(100'000, 'a') + ":80", "host name of 100000 bytes (at most 253"},
      {"tcp://127.1:80", "non-standard form (write 127.0.0.1)"},
      {"tcp://999.0.0.1:80", "neither a name nor an IPv4 address"},
      {"tcp://0x7f.0.0.1:80", "non-standard form (write 127.0.0.1)"},
      {"tcp://h:0", "port must be a number from 1 to 65535"},
      {"tcp://h:65536", "port must be a number from 1 to 65535"},
      {"tcp://h:+80", "port must be a number"},
      {"tcp://h", "no :port after the host"},
      {"tcp://:80", "empty host"},
      {"http://h:80", "expected tcp://host:port"},
      {"unix://rel.sock", "a Unix socket needs an absolute path"},
      {"unix:///a\0b"s, "has a NUL (byte 3)"},
      {"unix:///" + std::string(107, 'x'), "Unix socket path of 108 bytes (at most 107)"},
  };
  for (const bad& b : cases) {
    CAPTURE(b.url.substr(0, 60));
    const std::string said = refusal(b.url);
    CAPTURE(said);
    CHECK(said.starts_with("conpool::endpoint::parse: \""));
    CHECK(said.find(b.said) != std::string::npos);
    CHECK(said.size() < 600);  // the text quoted, never 100,000 bytes of it
  }
  // The same rule for endpoints made as values: problem() names the endpoint, escaped.
  const std::string why = endpoint{"127.0.0.1\0.evil"s, 80}.problem();
  CHECK(why == "endpoint 127.0.0.1\\x00.evil:80: host \"127.0.0.1\\x00.evil\": \\x00 (byte 10) is "
               "not allowed in a host name");
  CHECK(endpoint{"no..such.host", 80}.problem().find("an empty label") != std::string::npos);
  CHECK(endpoint::unix_socket("/" + std::string(200, 'x')).problem().find(
            "Unix socket path of 201 bytes") != std::string::npos);
}

TEST_CASE("proxy: http:// and socks5:// URLs with credentials parse, print and read back") {
  const proxy_config p = proxy_config::parse("socks5://us%40er:p%3Ass@127.0.0.1:1080");
  CHECK(p.kind == proxy_config::protocol::socks5);
  CHECK(p.username == "us@er");
  CHECK(p.password == "p:ss");
  CHECK(p.host == "127.0.0.1");
  CHECK(p.port == 1080);
  CHECK(p.to_url() == "socks5://us%40er:p%3Ass@127.0.0.1:1080");
  CHECK(p.to_string() == "socks5://us%40er@127.0.0.1:1080");  // never the password
  CHECK(proxy_config::parse(p.to_url()) == p);

  for (const char* url : {"http://127.0.0.1:8888", "http://proxy.internal:3128",
                          "http://u:p@[::1]:3128", "socks5://[::1]:1080"}) {
    CAPTURE(url);
    const proxy_config q = proxy_config::parse(url);
    CHECK(q.to_url() == url);
    CHECK(proxy_config::parse(q.to_url()) == q);
  }

  endpoint e{"db.internal", 5432};
  e.proxy = p;
  CHECK(e.to_string() == "db.internal:5432 via socks5://us%40er@127.0.0.1:1080");
  CHECK(e.problem().empty());
  CHECK(e != endpoint{"db.internal", 5432});  // the proxy is part of the identity
  CHECK(std::hash<endpoint>{}(e) != std::hash<endpoint>{}(endpoint{"db.internal", 5432}));
}

TEST_CASE("proxy: bad proxy URLs and settings are refused, naming what is wrong") {
  auto said = [](std::string_view url) -> std::string {
    try {
      (void)proxy_config::parse(url);
      return {};
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  };
  CHECK(said("https://127.0.0.1:3128").find("TLS to the proxy itself is not supported") !=
        std::string::npos);
  CHECK(said("ftp://h:1").find("expected http://host:port (CONNECT) or socks5://host:port") !=
        std::string::npos);
  CHECK(said("socks5://u:%zz@h:1").find("malformed %-escape") != std::string::npos);
  CHECK(said("socks5://@h:1").find("empty user name") != std::string::npos);
  CHECK(said("socks5://u@h:1").find("1 to 255 bytes each (RFC 1929)") != std::string::npos);
  CHECK(said("http://a%3Ab:p@h:1").find("cannot contain ':'") != std::string::npos);
  CHECK(said("http://h x:1").find("' ' (byte 2)") != std::string::npos);
  CHECK(said("http://h:99999").find("port must be a number") != std::string::npos);

  endpoint sock = endpoint::unix_socket("/run/x.sock");
  sock.proxy = proxy_config::parse("http://127.0.0.1:3128");
  CHECK(sock.problem().find("a Unix socket cannot be reached through a proxy") !=
        std::string::npos);
}
