// SPDX-License-Identifier: MIT
#pragma once
/// `endpoint`: where pooled connections go — host, port, TLS identity and proxy.
///
/// Two endpoints share connections only when host, port, TLS identity (context object and
/// server name) and proxy are all equal. Hosts are RFC 1123 names or IPv4/IPv6 literals (checked
/// before any I/O: `problem()`); names are resolved by the pool, off the shard's thread. A Unix
/// domain socket endpoint has its path as host ("/..." or, abstract, "@...") and port 0.
///
/// Example:
///   endpoint redis{"127.0.0.1", 6379};
///   endpoint api = endpoint::parse("tls://api.example.com:443");   // TLS: set api.tls->context
///   endpoint local = endpoint::parse("unix:///run/redis/redis.sock");
///   endpoint far{"db.internal", 5432};
///   far.proxy = proxy_config::parse("socks5://127.0.0.1:1080");     // conpool/proxy.hpp
///   std::cout << redis;                                              // 127.0.0.1:6379

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <conpool/proxy.hpp>

namespace conpool {

class tls_context;

/// TLS settings of an endpoint: the client context, and the server name sent as SNI and
/// verified against the certificate (the endpoint's host when absent).
struct tls_config {
  std::shared_ptr<tls_context> context;
  std::optional<std::string> servername;

  friend bool operator==(const tls_config&, const tls_config&) = default;
};

struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::optional<tls_config> tls;
  /// Reached through this HTTP CONNECT or SOCKS5 proxy (not for Unix sockets).
  std::optional<proxy_config> proxy;

  endpoint() = default;
  /// `endpoint{"127.0.0.1", 6379}`; TLS when `tls` is given.
  endpoint(std::string host_, std::uint16_t port_, std::optional<tls_config> tls_ = {})
      : host(std::move(host_)), port(port_), tls(std::move(tls_)) {}

  /// A Unix domain socket: `path` absolute ("/run/redis.sock") or abstract ("@name").
  static endpoint unix_socket(std::string path) { return {std::move(path), 0}; }

  /// "tcp://host:port" or "tls://host:port" (IPv6 literals in brackets: "tcp://[::1]:80"), or
  /// "unix:///path/to.sock" / "unix://@abstract-name". The host is checked as `problem()` does.
  /// A tls:// endpoint gets an empty `tls_config`: its context is the caller's to set.
  /// Throws std::invalid_argument naming the text and what is wrong with it.
  static endpoint parse(std::string_view url);

  /// The URL `parse` reads back to this endpoint's host, port and scheme ("tls://[::1]:443");
  /// the TLS context, server name and proxy are not part of it.
  [[nodiscard]] std::string to_url() const;

  /// A Unix domain socket's endpoint (port 0, host a path or "@name").
  [[nodiscard]] bool is_unix() const noexcept {
    return port == 0 && !host.empty() && (host.front() == '/' || host.front() == '@');
  }

  /// Why this endpoint cannot be used, naming the endpoint; empty when it can. Refused: a host
  /// that is not an RFC 1123 name or an IP literal (NUL, controls, spaces, "/ @ ? # % \ [ ]",
  /// over 253 bytes, ...), port 0, a bad Unix socket path, TLS without a context or in a build
  /// without TLS, a proxy that `proxy_config::problem` refuses or on a Unix socket.
  [[nodiscard]] std::string problem() const;

  /// "127.0.0.1:6379", "[::1]:80", "example.com:443 (tls)", "unix:///run/redis.sock",
  /// "db:5432 via socks5://user@127.0.0.1:1080" (never a password). Bytes that do not print
  /// (in an endpoint `problem()` refuses) are escaped as \xNN.
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// Prints `e.to_string()`.
std::ostream& operator<<(std::ostream& os, const endpoint& e);

/// `describe(e, ep, what)`: an error put into words naming the endpoint,
/// "127.0.0.1:6379 (tls): connect: connect timed out".
std::string describe(std::error_code e, const endpoint& ep, std::string_view what = {});

}  // namespace conpool

/// Hashes host, port, TLS identity (context object, server name) and proxy.
template <>
struct std::hash<conpool::endpoint> {
  std::size_t operator()(const conpool::endpoint& e) const noexcept;
};
