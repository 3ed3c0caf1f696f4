// SPDX-License-Identifier: MIT
#include "url.hpp"

#include <charconv>

namespace conpool::clients {
namespace {

std::uint16_t default_port(std::string_view scheme) {
  if (scheme == "http") return 80;
  if (scheme == "https") return 443;
  if (scheme == "redis") return 6379;
  if (scheme == "postgres" || scheme == "postgresql") return 5432;
  return 0;
}

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw std::invalid_argument("bad target \"" + std::string(text) + "\": " + why);
}

}  // namespace

url url::parse(std::string_view text) {
  url u;
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) bad(text, "expected scheme://host:port");
  u.scheme = std::string(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  const std::size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    u.path = std::string(rest.substr(slash));
    rest = rest.substr(0, slash);
  }
  std::string_view port_text;
  const bool bracketed = rest.starts_with('[');
  if (bracketed) {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) bad(text, "unclosed '[' around an IPv6 host");
    u.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') bad(text, "expected ':port' after ']'");
      port_text = rest.substr(1);
    }
  } else {
    const std::size_t colon = rest.find(':');
    u.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) {
        bad(text, "an IPv6 host goes in brackets: [::1]:port");
      }
      if (port_text.empty()) bad(text, "empty port after ':'");
    }
  }
  if (u.host.empty()) bad(text, "no host");
  // What prints back as the same URL: brackets only around an IPv6 host, no space or control.
  if (bracketed && u.host.find(':') == std::string::npos) bad(text, "brackets hold only IPv6");
  for (char c : u.host) {
    if (c == '[' || c == ']' || c == '@' || static_cast<unsigned char>(c) <= ' ' ||
        static_cast<unsigned char>(c) >= 0x7f) {
      bad(text, "no space, control byte, '[', ']' or '@' in a host (IPv6 goes in brackets)");
    }
  }
  if (port_text.empty()) {
    u.port = default_port(u.scheme);
    if (u.port == 0) bad(text, "no port (" + u.scheme + ":// has no default)");
  } else {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      bad(text, "port \"" + std::string(port_text) + "\" is not 1..65535");
    }
    u.port = static_cast<std::uint16_t>(port);
  }
  return u;
}

std::string url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string url::to_string() const {
  return scheme + "://" + authority() + (scheme == "http" || scheme == "https" ? path : "");
}

}  // namespace conpool::clients
