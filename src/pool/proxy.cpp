// SPDX-License-Identifier: MIT
// proxy_config's URL syntax: "http://" or "socks5://", optional percent-encoded user:password,
// host and port.
#include <charconv>
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

std::string host_port(const proxy_config& p) {
  std::string out = p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host;
  return out + ":" + std::to_string(p.port);
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
  std::string_view port_text;
  if (rest.starts_with('[')) {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) bad_url(url, "IPv6 literal without a closing ']'");
    p.host = rest.substr(1, close - 1);
    if (p.host.find(':') == std::string::npos) bad_url(url, "only IPv6 literals go in brackets");
    if (rest.substr(close + 1).size() < 2 || rest[close + 1] != ':') {
      bad_url(url, "no :port after the host");
    }
    port_text = rest.substr(close + 2);
  } else {
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) bad_url(url, "no :port after the host");
    p.host = rest.substr(0, colon);
    if (p.host.find(':') != std::string::npos) {
      bad_url(url, "an IPv6 literal must be in brackets: socks5://[::1]:1080");
    }
    port_text = rest.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    bad_url(url, "port must be a number from 1 to 65535");
  }
  p.port = static_cast<std::uint16_t>(port);
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
  return out + host_port(*this);
}

std::string proxy_config::to_string() const {
  std::string out = scheme(kind);
  if (!username.empty()) out += encode(username) + "@";
  return out + host_port(*this);
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
