// SPDX-License-Identifier: MIT
#pragma once
// The tests' own blocking HTTP/1.0 client, for pages served by other threads or processes
// (a /metrics page, Prometheus's query API).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include <conpool/address.hpp>

namespace conpool::testing {

/// GET `target` from 127.0.0.1:`port`: the whole response (status line, headers, body), or
/// empty when the connection failed.
inline std::string http_get(std::uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const socket_address to = socket_address::loopback(port);
  std::string out;
  if (::connect(fd, to.data(), to.size()) == 0) {
    const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace conpool::testing
