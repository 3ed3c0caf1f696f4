// SPDX-License-Identifier: MIT
#pragma once
// Target addresses as users type them: scheme://host[:port][/path], IPv6 hosts in brackets.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace conpool::clients {

struct url {
  std::string scheme;  ///< "http", "redis", "tcp", ...
  std::string host;    ///< without brackets
  std::uint16_t port = 0;
  std::string path = "/";  ///< http only; "/" when absent

  /// Parses `text`. A missing port takes the scheme's usual one (http 80, https 443, redis 6379,
  /// postgres 5432); tcp:// needs one. Throws std::invalid_argument naming `text` and what is
  /// wrong with it.
  static url parse(std::string_view text);
  /// "scheme://host:port/path", brackets around an IPv6 host.
  [[nodiscard]] std::string to_string() const;
  /// "host:port" (brackets around IPv6), as an HTTP Host header wants it.
  [[nodiscard]] std::string authority() const;
};

}  // namespace conpool::clients
