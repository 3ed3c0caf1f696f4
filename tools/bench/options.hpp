// SPDX-License-Identifier: MIT
#pragma once
// conpool-bench's command line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "url.hpp"

namespace conpool::bench {

/// A workload of the seed's stress framework, against the embedded echo server.
struct preset {
  std::string name;
  int servers;             ///< echo listeners (endpoints)
  int clients_per_server;  ///< clients per endpoint
  int messages;            ///< messages per client, one request each
  int parallel;            ///< clients running at once
  int bytes;               ///< message size
  int pool_size;           ///< max_connections_per_endpoint
  /// Each client's endpoint drawn by Zipf popularity (s = 1: the k-th most popular endpoint
  /// gets 1/k of the first's requests), as a forward proxy's upstreams; else round-robin.
  bool zipf = false;
};

/// The six default presets, then `extended` and `many_upstreams` (only when asked for by name).
const std::vector<preset>& presets();

enum class mode { pooled, fresh, both };

struct options {
  std::vector<preset> runs;             ///< presets to run (none with a --target)
  std::optional<clients::url> target;   ///< --target
  std::optional<mode> run_mode;         ///< --mode; default: both for presets, pooled for targets
  double min_time = 1.0;                ///< --min-time: a preset repeats until this long
  int connections = 50;                 ///< --connections
  double duration = 5.0;                ///< --duration
  std::optional<std::uint64_t> requests;  ///< --requests
  int size = 64;                        ///< --size
  std::string redis_op = "get";         ///< --redis-op
  std::optional<std::string> compare;   ///< --compare wrk|redis-benchmark
  std::string ca_file;                  ///< --ca-file: CA to verify tls:// and https:// targets
  std::optional<std::string> sni;       ///< --sni: server name (default: the target's host)
  bool insecure = false;                ///< --insecure: no certificate verification
  std::optional<std::string> json;      ///< --json FILE
  std::optional<std::string> html;      ///< --html FILE
  std::optional<std::string> metrics;   ///< --metrics ADDR: serve /metrics there
  unsigned shards = 0;                  ///< --shards N: the target with 1, 2, ..., N shards
  bool quiet = false;                   ///< --quiet: no progress bar
  std::string command;                  ///< the command line, as typed

  [[nodiscard]] bool pooled() const { return run_mode.value_or(mode::both) != mode::fresh; }
  [[nodiscard]] bool fresh() const {
    return run_mode.value_or(target ? mode::pooled : mode::both) != mode::pooled;
  }
};

/// Parses argv. Throws std::invalid_argument naming the option and the bad value.
/// Returns nullopt for --help (after printing the usage).
std::optional<options> parse_options(int argc, char** argv);

}  // namespace conpool::bench
