// SPDX-License-Identifier: MIT
#include <arpa/inet.h>

#include <charconv>
#include <cstddef>
#include <cstring>

#include <conpool/address.hpp>

#include "host_name.hpp"

namespace conpool {

socket_address::socket_address() noexcept : addr_{}, size_(sizeof(sockaddr_in)) {
  addr_.v4.sin_family = AF_INET;
}

result<socket_address> socket_address::parse(std::string_view host, std::uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char text[INET6_ADDRSTRLEN + 1];
  if (host.empty() || host.size() >= sizeof text) return fail(errc::bad_address);
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';
  socket_address a;
  if (inet_pton(AF_INET, text, &a.addr_.v4.sin_addr) == 1) {
    a.addr_.v4.sin_family = AF_INET;
    a.addr_.v4.sin_port = htons(port);
    a.size_ = sizeof(sockaddr_in);
    return a;
  }
  a.addr_ = {};
  if (inet_pton(AF_INET6, text, &a.addr_.v6.sin6_addr) == 1) {
    a.addr_.v6.sin6_family = AF_INET6;
    a.addr_.v6.sin6_port = htons(port);
    a.size_ = sizeof(sockaddr_in6);
    return a;
  }
  return fail(errc::bad_address);
}

result<socket_address> socket_address::parse(std::string_view host_and_port) {
  const std::size_t colon = host_and_port.rfind(':');
  if (colon == std::string_view::npos) return fail(errc::bad_address);
  std::string_view host = host_and_port.substr(0, colon);
  const std::string_view port_text = host_and_port.substr(colon + 1);
  // An IPv6 literal with a port must be bracketed: "::1:80" is ambiguous.
  if (host.find(':') != std::string_view::npos &&
      (host.size() < 2 || host.front() != '[' || host.back() != ']')) {
    return fail(errc::bad_address);
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return fail(errc::bad_address);
  }
  return parse(host, static_cast<std::uint16_t>(port));
}

result<socket_address> socket_address::unix_socket(std::string_view path) {
  socket_address a;
  a.addr_ = {};
  a.addr_.un.sun_family = AF_UNIX;
  if (!detail::unix_path_problem(path).empty()) return fail(errc::bad_address);
  const bool abstract = path.starts_with('@');
  std::memcpy(a.addr_.un.sun_path, path.data(), path.size());
  if (abstract) a.addr_.un.sun_path[0] = '\0';  // the abstract namespace: no file
  // Abstract names are counted bytes (no terminator); paths end at their NUL.
  a.size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return a;
}

socket_address socket_address::loopback(std::uint16_t port, bool v6) noexcept {
  socket_address a;
  if (v6) {
    a.addr_ = {};
    a.addr_.v6.sin6_family = AF_INET6;
    a.addr_.v6.sin6_addr = in6addr_loopback;
    a.addr_.v6.sin6_port = htons(port);
    a.size_ = sizeof(sockaddr_in6);
  } else {
    a.addr_.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.addr_.v4.sin_port = htons(port);
  }
  return a;
}

result<socket_address> socket_address::local_of(int fd) { return of_socket(fd, false); }

result<socket_address> socket_address::peer_of(int fd) { return of_socket(fd, true); }

result<socket_address> socket_address::of_socket(int fd, bool peer) {
  socket_address a;
  socklen_t len = sizeof a.addr_;
  const int rc = peer ? ::getpeername(fd, &a.addr_.any, &len) : ::getsockname(fd, &a.addr_.any, &len);
  if (rc != 0) return fail(errno_error(-errno));
  if (a.family() != AF_INET && a.family() != AF_INET6 && a.family() != AF_UNIX) {
    return fail(errc::bad_address);
  }
  a.size_ = len;
  return a;
}

std::uint16_t socket_address::port() const noexcept {
  if (family() == AF_UNIX) return 0;
  return ntohs(family() == AF_INET6 ? addr_.v6.sin6_port : addr_.v4.sin_port);
}

std::string socket_address::host() const {
  if (family() == AF_UNIX) {
    const std::size_t n = size_ - offsetof(sockaddr_un, sun_path);
    if (n > 0 && addr_.un.sun_path[0] == '\0') {
      return "@" + std::string(addr_.un.sun_path + 1, n - 1);  // abstract
    }
    return std::string(addr_.un.sun_path);
  }
  char text[INET6_ADDRSTRLEN];
  const void* src = family() == AF_INET6 ? static_cast<const void*>(&addr_.v6.sin6_addr)
                                         : static_cast<const void*>(&addr_.v4.sin_addr);
  inet_ntop(family(), src, text, sizeof text);
  return text;
}

std::string socket_address::to_string() const {
  if (family() == AF_UNIX) return "unix://" + host();  // unix:///path, unix://@name
  if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return host() + ":" + std::to_string(port());
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_UNIX) {
    return a.size_ == b.size_ && std::memcmp(&a.addr_.un, &b.addr_.un, a.size_) == 0;
  }
  if (a.family() == AF_INET6) {
    return a.addr_.v6.sin6_port == b.addr_.v6.sin6_port &&
           std::memcmp(&a.addr_.v6.sin6_addr, &b.addr_.v6.sin6_addr, sizeof(in6_addr)) == 0;
  }
  return a.addr_.v4.sin_port == b.addr_.v4.sin_port &&
         a.addr_.v4.sin_addr.s_addr == b.addr_.v4.sin_addr.s_addr;
}

}  // namespace conpool
