// SPDX-License-Identifier: MIT
#include <conpool_config.h>

#include <charconv>
#include <ostream>
#include <stdexcept>

#include <conpool/address.hpp>
#include <conpool/endpoint.hpp>
#include <conpool/error.hpp>

namespace conpool {
namespace {

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw std::invalid_argument("conpool::endpoint::parse: \"" + std::string(url) +
                              "\": " + std::string(why));
}

}  // namespace

endpoint endpoint::parse(std::string_view url) {
  endpoint e;
  std::string_view rest;
  if (url.starts_with("tcp://")) {
    rest = url.substr(6);
  } else if (url.starts_with("tls://")) {
    rest = url.substr(6);
    e.tls.emplace();
  } else if (url.starts_with("unix://")) {
    e.host = url.substr(7);
    if (!socket_address::unix_socket(e.host)) {
      bad_url(url, "a Unix socket needs an absolute path (unix:///run/x.sock) or an abstract "
                   "name (unix://@name), at most 107 bytes, without NUL");
    }
    return e;
  } else {
    bad_url(url, "expected tcp://host:port, tls://host:port or unix:///path");
  }
  std::string_view port_text;
  if (rest.starts_with('[')) {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) bad_url(url, "IPv6 literal without a closing ']'");
    e.host = rest.substr(1, close - 1);
    if (rest.substr(close + 1).size() < 2 || rest[close + 1] != ':') {
      bad_url(url, "no :port after the host");
    }
    port_text = rest.substr(close + 2);
  } else {
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) bad_url(url, "no :port after the host");
    e.host = rest.substr(0, colon);
    if (e.host.find(':') != std::string::npos) {
      bad_url(url, "an IPv6 literal must be in brackets: tcp://[::1]:80");
    }
    port_text = rest.substr(colon + 1);
  }
  if (e.host.empty()) bad_url(url, "empty host");
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    bad_url(url, "port must be a number from 1 to 65535");
  }
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

std::string endpoint::problem() const {
  const std::string name = "endpoint " + to_string();
  if (host.empty()) return name + ": empty host";
  if (is_unix()) {
    if (!socket_address::unix_socket(host)) {
      return name + ": not a usable Unix socket path (absolute or @abstract, at most 107 bytes)";
    }
  } else if (port == 0) {
    return name + ": port 0";
  }
  if (tls) {
    // Refused before any I/O: a TLS endpoint must never be dialled in plain.
    if (!CONPOOL_HAVE_TLS) return name + ": TLS endpoint, but this conpool was built without TLS";
    if (!tls->context) return name + ": TLS without a context (set tls->context)";
  }
  return {};
}

std::string endpoint::to_string() const {
  std::string out;
  if (is_unix()) {
    out = "unix://" + host;
  } else {
    out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    out += ':';
    out += std::to_string(port);
  }
  if (tls) {
    out += " (tls";
    if (tls->servername && *tls->servername != host) out += ", sni " + *tls->servername;
    out += ')';
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const endpoint& e) { return os << e.to_string(); }

std::string describe(std::error_code e, const endpoint& ep, std::string_view what) {
  return describe(e, ep.to_string(), what);
}

}  // namespace conpool

std::size_t std::hash<conpool::endpoint>::operator()(const conpool::endpoint& e) const noexcept {
  std::size_t h = std::hash<std::string>{}(e.host);
  auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(e.port);
  if (e.tls) {
    mix(std::hash<const void*>{}(e.tls->context.get()));
    if (e.tls->servername) mix(std::hash<std::string>{}(*e.tls->servername));
  }
  return h;
}
