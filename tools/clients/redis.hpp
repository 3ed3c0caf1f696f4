// SPDX-License-Identifier: MIT
#pragma once
// A minimal Redis (RESP2) client side over a pooled connection: commands as arrays of bulk
// strings, one reply read at a time.
//
// Example:
//   read_buffer in;
//   const std::string_view get[] = {"GET", "key"};
//   result<resp_reply> r = co_await resp_call(c->flow(), in, resp_command(get));

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "read_buffer.hpp"

namespace conpool::clients {

/// One command, encoded: `*N` then each argument as a bulk string.
std::string resp_command(std::span<const std::string_view> args);

struct resp_reply {
  char kind = 0;             ///< '+' simple, '-' error, ':' integer, '$' bulk, '*' array
  std::string text;          ///< a simple string's, an error's or a bulk string's bytes
  bool nil = false;          ///< a nil bulk string or array
  std::int64_t integer = 0;  ///< ':' replies; for arrays, the element count
};

/// Reads one reply (an array's elements are read and counted, not kept). Errors: the read's;
/// errc::end_of_stream; std::errc::bad_message for bytes that are not RESP.
task<result<resp_reply>> read_resp_reply(flow& f, read_buffer& in);

/// Writes `command` (from resp_command), then reads its reply.
task<result<resp_reply>> resp_call(flow& f, read_buffer& in, std::string_view command);

/// The health check of the seed's Redis example: PING answered by +PONG.
task<bool> redis_ping(flow& f);

}  // namespace conpool::clients
