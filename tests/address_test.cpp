// SPDX-License-Identifier: MIT
#include "support/support.hpp"

using namespace conpool;

TEST_CASE("address: IPv4 and IPv6 literals parse and print") {
  result<socket_address> a = socket_address::parse("127.0.0.1", 80);
  REQUIRE(a.has_value());
  CHECK(a->family() == AF_INET);
  CHECK(a->port() == 80);
  CHECK(a->to_string() == "127.0.0.1:80");
  result<socket_address> b = socket_address::parse("::1", 8080);
  REQUIRE(b.has_value());
  CHECK(b->family() == AF_INET6);
  CHECK(b->to_string() == "[::1]:8080");
  CHECK(b->host() == "::1");
  CHECK(socket_address::parse("[::1]", 1)->to_string() == "[::1]:1");
  CHECK(socket_address::parse("127.0.0.1:6379") == socket_address::parse("127.0.0.1", 6379));
  CHECK(socket_address::parse("[fe80::1]:443")->port() == 443);
  CHECK(socket_address::loopback(5, true) == socket_address::parse("::1", 5));
  CHECK(socket_address::loopback(5) != socket_address::loopback(6));
}

TEST_CASE("address: what is not a literal with a port is errc::bad_address") {
  for (const char* bad : {"", "localhost:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:-1", "::1:80", "[::1]", "256.0.0.1:1", "127.0.0.1:8x"}) {
    CAPTURE(bad);
    CHECK(socket_address::parse(bad).error() == errc::bad_address);
  }
  CHECK(socket_address::parse("example.com", 80).error() == errc::bad_address);
}

TEST_CASE("address: local_of gives the bound port") {
  result<listener> l = listener::open(socket_address::loopback(0));
  REQUIRE(l.has_value());
  CHECK(l->address().port() != 0);
  CHECK(socket_address::local_of(l->native_handle()) == l->address());
  CHECK(socket_address::local_of(-1).error() == std::errc::bad_file_descriptor);
}

TEST_CASE("address: Unix domain sockets, by path and in the abstract namespace") {
  result<socket_address> path = socket_address::unix_socket("/run/redis/redis.sock");
  REQUIRE(path);
  CHECK(path->family() == AF_UNIX);
  CHECK(path->port() == 0);
  CHECK(path->host() == "/run/redis/redis.sock");
  CHECK(path->to_string() == "unix:///run/redis/redis.sock");
  result<socket_address> abstract = socket_address::unix_socket("@conpool");
  REQUIRE(abstract);
  CHECK(abstract->host() == "@conpool");
  CHECK(abstract->to_string() == "unix://@conpool");
  CHECK(abstract != path);
  CHECK(socket_address::unix_socket("@conpool") == abstract);
  for (const std::string_view bad : {std::string_view(""), std::string_view("relative.sock"),
                                     std::string_view("/"), std::string_view("@"),
                                     std::string_view("/a\0b", 4)}) {
    CAPTURE(bad);
    CHECK(socket_address::unix_socket(bad).error() == errc::bad_address);
  }
  CHECK(socket_address::unix_socket("/" + std::string(106, 'x')));  // 107 bytes: the most
  CHECK(!socket_address::unix_socket("/" + std::string(107, 'x')));
}
