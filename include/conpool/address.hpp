// SPDX-License-Identifier: MIT
#pragma once
/// `socket_address`: an IPv4 or IPv6 address and a port, or a Unix domain socket's path, as
/// the kernel takes it.
///
/// Built from numeric literals and paths only; host names are resolved by the pool, never here.
///
/// Example:
///   result<socket_address> a = socket_address::parse("::1", 8080);
///   result<socket_address> b = socket_address::parse("127.0.0.1:6379");
///   a->to_string();   // "[::1]:8080"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <conpool/error.hpp>

namespace conpool {

class socket_address {
 public:
  /// The unspecified IPv4 address, port 0.
  socket_address() noexcept;

  /// `host` an IPv4 literal ("127.0.0.1") or IPv6 literal ("::1", brackets allowed).
  /// Errors: `errc::bad_address` when `host` is not such a literal.
  static result<socket_address> parse(std::string_view host, std::uint16_t port);
  /// "127.0.0.1:80" or "[::1]:80". Errors: `errc::bad_address` (no port, port out of range,
  /// host not a literal).
  static result<socket_address> parse(std::string_view host_and_port);
  /// A Unix domain socket: a path ("/run/redis.sock") or, with a leading '@', a name in the
  /// abstract namespace ("@conpool-test"). Errors: `errc::bad_address` when it is empty,
  /// relative, holds a NUL, or is longer than the kernel's 107 bytes.
  static result<socket_address> unix_socket(std::string_view path);
  /// 127.0.0.1 (or ::1 when `v6`) with `port`.
  static socket_address loopback(std::uint16_t port, bool v6 = false) noexcept;
  /// The local address a socket is bound to (getsockname). Errors: the system's.
  static result<socket_address> local_of(int fd);
  /// The address of a connected socket's peer (getpeername). Errors: the system's
  /// (not_connected, ...).
  static result<socket_address> peer_of(int fd);

  /// AF_INET, AF_INET6 or AF_UNIX.
  [[nodiscard]] int family() const noexcept { return addr_.any.sa_family; }
  /// The port; 0 for a Unix socket.
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// The address without the port: "127.0.0.1", "::1"; a Unix socket's path ("@name" when
  /// abstract).
  [[nodiscard]] std::string host() const;
  /// "127.0.0.1:80", "[::1]:80", "unix:///run/redis.sock", "unix://@name".
  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] const sockaddr* data() const noexcept { return &addr_.any; }
  [[nodiscard]] socklen_t size() const noexcept { return size_; }

  friend bool operator==(const socket_address& a, const socket_address& b) noexcept;

 private:
  static result<socket_address> of_socket(int fd, bool peer);
  union {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
    sockaddr_un un;
  } addr_;
  socklen_t size_;
};

}  // namespace conpool
