// SPDX-License-Identifier: MIT
// proxy_config's URL syntax: "http://" or "socks5://", optional percent-encoded user:password,
// host and port.
#include <stdexcept>

#include <conpool/proxy.hpp>

#include "host_name.hpp"

namespace conpool {
namespace {

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw std::invalid_argument("conpool::proxy_config::parse: " + detail::quoted(url, 200) + ": " +
                              std::string(why));
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a user or password; false on a malformed escape.
bool decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    const int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
    const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// Everything but RFC 3986's unreserved bytes, percent-encoded.
std::string encode(std::string_view in) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
  return out;
}

const char* scheme(proxy_config::protocol k) {
  return k == proxy_config::protocol::socks5 ? "socks5://" : "http://";
}

}  // namespace

proxy_config proxy_config::parse(std::string_view url) {
  proxy_config p;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("socks5://")) {
    p.kind = protocol::socks5;
    rest = url.substr(9);
  } else if (url.starts_with("https://")) {
    bad_url(url, "TLS to the proxy itself is not supported: use http:// (CONNECT) or socks5://");
  } else {
    bad_url(url, "expected http://host:port (CONNECT) or socks5://host:port");
  }
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    if (!decode(userinfo.substr(0, colon), p.username) ||
        (colon != std::string_view::npos && !decode(userinfo.substr(colon + 1), p.password))) {
      bad_url(url, "malformed %-escape in user or password");
    }
    if (p.username.empty()) bad_url(url, "empty user name before '@'");
    rest = rest.substr(at + 1);
  }
  if (std::string why = detail::split_authority(rest, p.host, p.port); !why.empty()) {
    bad_url(url, why);
  }
  if (std::string why = p.problem(); !why.empty()) bad_url(url, why);
  return p;
}

std::string proxy_config::to_url() const {
  std::string out = scheme(kind);
  if (!username.empty()) {
    out += encode(username);
    if (!password.empty()) out += ":" + encode(password);
    out += '@';
  }
  return out + detail::join_authority(host, port);
}

std::string proxy_config::to_string() const {
  std::string out = scheme(kind);
  if (!username.empty()) out += encode(username) + "@";
  return out + detail::join_authority(host, port);
}

std::string proxy_config::problem() const {
  const std::string name = "proxy " + to_string();
  if (std::string why = detail::host_problem(host); !why.empty()) return name + ": " + why;
  if (port == 0) return name + ": port 0";
  if (username.empty() && !password.empty()) return name + ": a password without a user";
  if (kind == protocol::socks5 && !username.empty() &&
      (username.size() > 255 || password.empty() || password.size() > 255)) {
    return name + ": a SOCKS5 user and password are 1 to 255 bytes each (RFC 1929)";
  }
  if (kind == protocol::http && username.find(':') != std::string::npos) {
    return name + ": an HTTP proxy user cannot contain ':' (RFC 7617)";
  }
  return {};
}

}  // namespace conpool
