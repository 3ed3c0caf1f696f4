// SPDX-License-Identifier: MIT
#pragma once
// Name resolution that never blocks a shard: numeric hosts are parsed at once; names are looked
// up by getaddrinfo on a helper thread, whose answer comes back to the asking shard as an
// IORING_OP_MSG_RING completion, and are cached per shard for the pool's dns_ttl.

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include <conpool/address.hpp>
#include <conpool/error.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

class resolver {
 public:
  explicit resolver(std::chrono::duration<double> ttl) : ttl_(ttl) {}

  /// Every address of `host` with `port`, IPv4 and IPv6, in getaddrinfo's order.
  /// Errors: errc::resolve_failed, operation_canceled.
  task<result<std::vector<socket_address>>> resolve(std::string host, std::uint16_t port);

 private:
  struct entry {
    std::vector<socket_address> addresses;  // port 0
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::duration<double> ttl_;
  std::unordered_map<std::string, entry> cache_;
};

}  // namespace conpool::detail
