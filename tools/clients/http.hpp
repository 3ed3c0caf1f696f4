// SPDX-License-Identifier: MIT
#pragma once
// A minimal HTTP/1.1 client side over a pooled connection: GET requests, and responses framed by
// Content-Length, chunked transfer coding, or the server's close.
//
// Example:
//   read_buffer in;
//   co_await c->flow().write_all(http_get_request("127.0.0.1:8080", "/"));
//   result<http_response> r = co_await read_http_response(c->flow(), in);
//   r->keep_alive ? p.release(std::move(*c)) : p.close(std::move(*c));

#include <cstddef>
#include <string>
#include <string_view>

#include "read_buffer.hpp"

namespace conpool::clients {

/// "GET `path` HTTP/1.1" with a Host header, keep-alive (HTTP/1.1's default).
std::string http_get_request(std::string_view host, std::string_view path);

struct http_response {
  int status = 0;              ///< 200, 404, ...
  std::size_t body_size = 0;   ///< bytes of body (after de-chunking)
  bool keep_alive = true;      ///< false: the server closes (Connection: close, HTTP/1.0, EOF body)
  std::string body;            ///< the body, when asked for
};

/// Reads one response to a GET. With `keep_body`, the body is kept in `body`; else only
/// counted. Errors: the read's; errc::end_of_stream (closed early); std::errc::bad_message for
/// a malformed status line, header or chunk.
task<result<http_response>> read_http_response(flow& f, read_buffer& in, bool keep_body = true);

}  // namespace conpool::clients
