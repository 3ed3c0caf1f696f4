// SPDX-License-Identifier: MIT
#pragma once
// conpool-proxy's work on one shard: a listener of its own (SO_REUSEPORT: the kernel spreads
// new connections over the shards), a task per client connection reading its requests
// (HTTP/1.1 keep-alive), each forwarded to an upstream over a connection of the shared pool,
// the response streamed back; and, on a stop, a drain.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <conpool/conpool.hpp>

#include "http1.hpp"
#include "options.hpp"
#include "read_buffer.hpp"
#include "proxy_stats.hpp"

namespace conpool::proxy {

/// An upstream as the shards use it.
struct upstream {
  clients::url url;
  endpoint ep;
  std::string authority;  ///< "host:port": the Host for HTTP/1.0 clients that send none
};

/// What the shards share: the options, the pool, the upstreams, the stats.
struct shared_state {
  const options& opts;
  pool& upstream_pool;
  std::vector<upstream> upstreams;
  proxy_stats stats;
};

/// One shard's part. `run` is the shard's whole life: it accepts until `stop`, then drains.
class shard_server {
 public:
  shard_server(shared_state& shared, unsigned index);
  shard_server(const shard_server&) = delete;
  shard_server& operator=(const shard_server&) = delete;

  /// Accepts and serves until `stop`; then lets the requests in flight finish (bounded by
  /// --drain-timeout) and returns. Throws std::runtime_error when it cannot listen.
  task<void> run();
  /// Stops accepting; clients between requests are closed, the others after their response.
  /// Call on this shard's thread.
  void stop() noexcept;

 private:
  struct client;
  /// How a body is delimited, and the most it may carry.
  struct body_framing {
    framing kind = framing::none;
    std::uint64_t length = 0;
    std::uint64_t limit = UINT64_MAX;
  };
  struct body_result {
    bool failed = false;
    bool source_failed = false;  // else the sink failed
    bool malformed = false;      // a chunked body that broke its framing
    bool too_large = false;      // past the limit
    std::error_code error;
  };
  /// What a request needs once its head's bytes are gone.
  struct exchange {
    bool head_request = false;
    bool may_retry = false;       // idempotent, no body: safe to send again
    bool keep = true;             // the client keeps its connection
    bool continue_first = false;  // the client expects 100 Continue before its body
    int client_minor = 1;
    body_framing body;
    std::size_t which = 0;  // the upstream
  };

  task<void> accept_loop(scope& clients);
  static task<void> sweeper(shard_server& s);
  task<void> drain_deadline(scope& clients);
  task<void> serve(flow conn, std::string peer);
  /// One request to its upstream and the response back; true when the client connection
  /// may carry another request.
  task<bool> forward(client& me, clients::read_buffer& in, clients::read_buffer& up,
                     std::string& out, std::string& head, const exchange& x);
  /// Streams a body from `src` to `dst` (`buf`'s bytes first), `prefix` sent with its first
  /// bytes.
  task<body_result> move_body(client& me, clients::read_buffer& buf, flow& src,
                              bool from_upstream, flow& dst, body_framing how, std::string& prefix);
  /// An error response of the proxy's own; true when the connection may go on.
  task<bool> answer(client& me, int status, std::string_view detail, bool keep);
  /// The upstream for the next request (--balance).
  std::size_t choose() noexcept;
  /// Ends the waits past their deadline (the sweep, every 100 ms).
  void sweep() noexcept;

  shared_state& shared_;
  const unsigned index_;
  proxy_stats::shard_part& stats_;
  std::vector<endpoint_handle> handles_;  // one per upstream
  std::vector<std::uint32_t> in_flight_;  // requests to each upstream from this shard now
  std::size_t next_ = 0;                  // the balance's cursor
  bool stopping_ = false;
  std::optional<listener> listener_;
  scope* accepting_ = nullptr;
  client* clients_ = nullptr;  // every client connection of this shard
};

}  // namespace conpool::proxy
