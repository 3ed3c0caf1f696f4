// SPDX-License-Identifier: MIT
#pragma once
/// `proxy_config`: an HTTP CONNECT or SOCKS5 proxy that an endpoint is reached through.
///
/// The pool connects to the proxy (resolving and racing the proxy's addresses), asks it for a
/// tunnel to the endpoint's host and port, then runs TLS to the endpoint through the tunnel when
/// the endpoint has TLS. All of it is the open, inside `connect_timeout`. Connections are pooled
/// per (proxy, endpoint, TLS): the proxy is part of the endpoint's identity. A proxy that refuses
/// gives `errc::tunnel_failed`, its reply in `pool::last_error`.
///
/// The endpoint's host goes to the proxy as written: names are resolved by the proxy (SOCKS5
/// "domain name" addresses, like curl's socks5h://), IP literals are sent as addresses.
///
/// Example:
///   endpoint api = endpoint::parse("tls://api.internal:443");
///   api.tls->context = ctx;
///   api.proxy = proxy_config::parse("socks5://user:secret@127.0.0.1:1080");
///   std::cout << api;   // api.internal:443 (tls) via socks5://user@127.0.0.1:1080

#include <cstdint>
#include <string>
#include <string_view>

namespace conpool {

struct proxy_config {
  /// How the tunnel is asked for.
  enum class protocol : std::uint8_t {
    http,    ///< HTTP/1.1 CONNECT (RFC 9110 §9.3.6), Basic Proxy-Authorization when a user is set
    socks5,  ///< SOCKS5 CONNECT (RFC 1928), username/password (RFC 1929) when a user is set
  };

  protocol kind = protocol::http;
  std::string host;        ///< the proxy's name or IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string username;    ///< empty: no authentication
  std::string password;

  /// "http://[user:password@]host:port" (CONNECT) or "socks5://[user:password@]host:port";
  /// user and password percent-decoded. Throws std::invalid_argument naming the text and what
  /// is wrong with it (https:// proxies are not supported).
  static proxy_config parse(std::string_view url);

  /// The URL `parse` reads back to an equal value (credentials included, percent-encoded).
  [[nodiscard]] std::string to_url() const;

  /// For logs: the URL with the password left out ("socks5://user@127.0.0.1:1080").
  [[nodiscard]] std::string to_string() const;

  /// Why this proxy cannot be used (host, port, credentials over the protocol's limits), naming
  /// it; empty when it can.
  [[nodiscard]] std::string problem() const;

  friend bool operator==(const proxy_config&, const proxy_config&) = default;
};

}  // namespace conpool
