// SPDX-License-Identifier: MIT
#include "host_name.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstdio>

namespace conpool::detail {
namespace {

bool is_name_byte(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string byte_name(char c) {
  char out[8];
  if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
    std::snprintf(out, sizeof out, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
  } else {
    std::snprintf(out, sizeof out, "'%c'", c);
  }
  return out;
}

bool ipv4(std::string_view host) noexcept {
  char text[INET_ADDRSTRLEN];
  if (host.size() >= sizeof text) return false;
  host.copy(text, host.size());
  text[host.size()] = '\0';
  in_addr a;
  return ::inet_pton(AF_INET, text, &a) == 1;
}

// An IPv6 literal, with an optional zone ("fe80::1%eth0": an interface name's bytes).
bool ipv6(std::string_view host) noexcept {
  const std::size_t percent = host.find('%');
  if (percent != std::string_view::npos) {
    const std::string_view zone = host.substr(percent + 1);
    if (zone.empty() || zone.size() > 15) return false;
    for (char c : zone) {
      if (!is_name_byte(c) && c != '.') return false;
    }
    host = host.substr(0, percent);
  }
  char text[INET6_ADDRSTRLEN];
  if (host.size() >= sizeof text) return false;
  host.copy(text, host.size());
  text[host.size()] = '\0';
  in6_addr a;
  return ::inet_pton(AF_INET6, text, &a) == 1;
}

}  // namespace

bool is_ip_literal(std::string_view host) noexcept {
  // inet_pton reads up to a NUL: "127.0.0.1\0.evil" must not pass as 127.0.0.1.
  if (host.find('\0') != std::string_view::npos) return false;
  return ipv4(host) || ipv6(host);
}

std::string host_problem(std::string_view host) {
  if (host.empty()) return "empty host";
  if (is_ip_literal(host)) return {};
  if (host.find(':') != std::string_view::npos) {
    return "host " + quoted(host) + " has ':' but is not an IPv6 address";
  }
  std::string_view name = host;
  if (name.ends_with('.')) name.remove_suffix(1);  // a fully qualified name
  if (name.size() > 253) {
    return "host name of " + std::to_string(name.size()) + " bytes (at most 253, without a final '.')";
  }
  for (std::size_t i = 0; i < host.size(); ++i) {
    if (!is_name_byte(host[i]) && host[i] != '.') {
      return "host " + quoted(host) + ": " + byte_name(host[i]) + " (byte " +
             std::to_string(i + 1) + ") is not allowed in a host name";
    }
  }
  std::size_t start = 0;
  bool all_digits = true;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    if (label.empty()) return "host " + quoted(host) + " has an empty label";
    if (label.size() > 63) {
      return "host " + quoted(host) + " has a label of " + std::to_string(label.size()) +
             " bytes (at most 63)";
    }
    if (label.front() == '-' || label.back() == '-') {
      return "host " + quoted(host) + ": a label starts or ends with '-'";
    }
    all_digits = label.find_first_not_of("0123456789") == std::string_view::npos;
    start = end + 1;
  }
  char text[256];
  name.copy(text, name.size());
  text[name.size()] = '\0';
  // "127.1", "0x7f.0.0.1": inet_aton's forms, which the resolver takes as an address.
  in_addr a;
  if (::inet_aton(text, &a) != 0) {
    char dotted[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &a, dotted, sizeof dotted);
    return "host " + quoted(host) + " is an IPv4 address in a non-standard form (write " +
           dotted + ")";
  }
  // "1.2.3.4.5", "999.0.0.1": no top-level domain is all digits (RFC 3696 §2).
  if (all_digits) return "host " + quoted(host) + " is neither a name nor an IPv4 address";
  return {};
}

std::string split_authority(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view port_text;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return "IPv6 literal without a closing ']'";
    host = text.substr(1, close - 1);
    if (host.find(':') == std::string::npos) return "only IPv6 literals go in brackets";
    if (text.substr(close + 1).size() < 2 || text[close + 1] != ':') {
      return "no :port after the host";
    }
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return "no :port after the host";
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos) {
      return "an IPv6 literal must be in brackets: [::1]:80";
    }
    port_text = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
      value > 65535) {
    return "port must be a number from 1 to 65535";
  }
  port = static_cast<std::uint16_t>(value);
  return {};
}

std::string join_authority(std::string_view host, std::uint16_t port) {
  std::string out = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]"
                                                             : std::string(host);
  return out + ":" + std::to_string(port);
}

std::string unix_path_problem(std::string_view path) {
  if (!path.starts_with('/') && !path.starts_with('@')) {
    return "a Unix socket needs an absolute path (unix:///run/x.sock) or an abstract name "
           "(unix://@name)";
  }
  if (path.size() < 2) return "a Unix socket path needs a name after " + quoted(path);
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return "Unix socket path of " + std::to_string(path.size()) + " bytes (at most " +
           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")";
  }
  if (const std::size_t nul = path.find('\0'); nul != std::string_view::npos) {
    return "Unix socket path " + quoted(path) + " has a NUL (byte " + std::to_string(nul + 1) + ")";
  }
  return {};
}

std::string quoted(std::string_view text, std::size_t limit) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      out += byte_name(c);
    } else {
      out += c;
    }
  }
  if (text.size() > limit) out += "...";
  out += '"';
  return out;
}

}  // namespace conpool::detail
