// SPDX-License-Identifier: MIT
#pragma once
// conpool-proxy's command line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <conpool/address.hpp>

#include "url.hpp"

namespace conpool::proxy {

enum class balance { round_robin, least_loaded };

struct options {
  socket_address listen;                  ///< --listen HOST:PORT
  std::vector<clients::url> upstreams;    ///< --upstream URL (http:// or https://), repeated
  unsigned shards = 1;                    ///< --shards N
  int upstream_connections = 32;          ///< --upstream-connections N: per upstream, all shards
  balance choice = balance::round_robin;  ///< --balance
  std::optional<std::string> metrics;     ///< --metrics HOST:PORT
  double connect_timeout = 5;             ///< --connect-timeout S
  double response_timeout = 30;           ///< --response-timeout S: the upstream's response head
  double client_timeout = 60;             ///< --client-timeout S: a client's idle keep-alive / head
  double queue_timeout = 5;               ///< --queue-timeout S: waiting at the upstream limit
  double drain_timeout = 10;              ///< --drain-timeout S: in-flight requests at shutdown
  std::size_t max_header_bytes = 16384;   ///< --max-header-bytes N: a request head (431 past it)
  std::uint64_t max_body_bytes = 1 << 30; ///< --max-body-bytes N: a request body (413 past it)
  std::string ca_file;                    ///< --ca-file FILE: CAs for https:// upstreams
  bool insecure = false;                  ///< --insecure: https:// upstreams unverified
  bool quiet = false;                     ///< --quiet: no start-up line
};

/// Parses argv. Throws std::invalid_argument naming the option and the bad value. Returns
/// nullopt for --help (after printing the usage).
std::optional<options> parse_options(int argc, char** argv);

}  // namespace conpool::proxy
