// SPDX-License-Identifier: MIT
// endpoint's syntax: parse, check, print. Pure (no I/O and no conpool runtime types), so that
// the fuzz target builds it alone.
#include <conpool_config.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include <conpool/endpoint.hpp>

#include "host_name.hpp"

namespace conpool {
namespace {

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw std::invalid_argument("conpool::endpoint::parse: " + detail::quoted(url, 200) + ": " +
                              std::string(why));
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
    if (std::string why = detail::unix_path_problem(e.host); !why.empty()) bad_url(url, why);
    return e;
  } else {
    bad_url(url, "expected tcp://host:port, tls://host:port or unix:///path");
  }
  if (std::string why = detail::split_authority(rest, e.host, e.port); !why.empty()) {
    bad_url(url, why);
  }
  if (std::string why = detail::host_problem(e.host); !why.empty()) bad_url(url, why);
  return e;
}

std::string endpoint::problem() const {
  const std::string name = "endpoint " + to_string();
  if (is_unix()) {
    if (std::string why = detail::unix_path_problem(host); !why.empty()) return name + ": " + why;
    if (proxy) return name + ": a Unix socket cannot be reached through a proxy";
  } else {
    if (std::string why = detail::host_problem(host); !why.empty()) return name + ": " + why;
    if (port == 0) return name + ": port 0";
  }
  if (tls) {
    // Refused before any I/O: a TLS endpoint must never be dialled in plain.
    if (!CONPOOL_HAVE_TLS) return name + ": TLS endpoint, but this conpool was built without TLS";
    if (!tls->context) return name + ": TLS without a context (set tls->context)";
  }
  if (proxy) {
    if (std::string why = proxy->problem(); !why.empty()) return name + ": " + why;
  }
  return {};
}

std::string endpoint::to_url() const {
  if (is_unix()) return "unix://" + host;
  return (tls ? "tls://" : "tcp://") + detail::join_authority(host, port);
}

std::string endpoint::to_string() const {
  std::string out;
  if (is_unix()) {
    out = "unix://" + host;
  } else {
    out = detail::join_authority(host, port);
  }
  // Only in an endpoint problem() refuses; quoted() escapes, we drop its quotes.
  if (std::any_of(out.begin(), out.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f;
      })) {
    const std::string q = detail::quoted(out, 200);
    out = q.substr(1, q.size() - 2);
  }
  if (tls) {
    out += " (tls";
    if (tls->servername && *tls->servername != host) out += ", sni " + *tls->servername;
    out += ')';
  }
  if (proxy) out += " via " + proxy->to_string();
  return out;
}

std::ostream& operator<<(std::ostream& os, const endpoint& e) { return os << e.to_string(); }

}  // namespace conpool

std::size_t std::hash<conpool::endpoint>::operator()(const conpool::endpoint& e) const noexcept {
  std::size_t h = std::hash<std::string>{}(e.host);
  auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(e.port);
  if (e.tls) {
    mix(std::hash<const void*>{}(e.tls->context.get()));
    if (e.tls->servername) mix(std::hash<std::string>{}(*e.tls->servername));
  }
  if (e.proxy) {
    mix(std::hash<std::string>{}(e.proxy->host));
    mix(e.proxy->port);
    mix(static_cast<std::size_t>(e.proxy->kind) + 1);
    mix(std::hash<std::string>{}(e.proxy->username));
  }
  return h;
}
