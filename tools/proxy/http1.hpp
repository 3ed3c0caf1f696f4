// SPDX-License-Identifier: MIT
#pragma once
// HTTP/1.1 as a proxy reads and writes it (RFC 9112, RFC 9110): request and response heads
// parsed in place (views into the caller's buffer, no allocation but the header list), the
// body's framing decided as §6.3 says, the heads rewritten for the next hop (hop-by-hop fields
// dropped, §7.6.1; Via and X-Forwarded-For added), and a scanner that finds where a chunked
// body ends while its bytes stream through untouched.
//
// Strict where leniency lets requests be smuggled: a request with both Content-Length and
// Transfer-Encoding, differing Content-Lengths, a transfer coding other than a final
// "chunked", whitespace before a field's colon, obs-fold, a bare LF, or a control byte is
// refused (400).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conpool::proxy {

struct field {
  std::string_view name;
  std::string_view value;  // trimmed of surrounding whitespace
};

/// How a message's body is delimited.
enum class framing : std::uint8_t {
  none,         ///< no body
  length,       ///< Content-Length bytes
  chunked,      ///< chunked transfer coding, up to its last chunk and trailers
  until_close,  ///< a response read until the server closes (no length, not chunked)
};

/// What a head parse came to.
enum class parse_status : std::uint8_t {
  done,        ///< a whole head: its length in `head_size`
  incomplete,  ///< more bytes needed (and the limit is not reached)
  bad,         ///< malformed (`why` says how): 400 for a request, 502 for a response
  too_large,   ///< the head is longer than the limit: 431 for a request, 502 for a response
};

/// Resets a head to its defaults but for the capacity of its field list.
template <class Head>
void reset_keeping_fields(Head& h) noexcept {
  std::vector<field> keep = std::move(h.fields);
  keep.clear();
  h = Head{};
  h.fields = std::move(keep);
}

struct request_head {
  std::string_view method;
  std::string_view target;
  int minor = 1;  ///< HTTP/1.`minor`
  std::vector<field> fields;
  framing body = framing::none;
  std::uint64_t length = 0;  ///< with framing::length
  bool length_given = false; ///< a Content-Length field was sent (0 included)
  bool keep_alive = true;    ///< the client may send another request on this connection
  bool host_given = false;   ///< a Host field was sent (it may be empty)
  std::string_view host;     ///< the Host field (required in HTTP/1.1)
  std::size_t head_size = 0;
  std::string why;  ///< what was wrong, for a `bad` parse

  /// GET, HEAD, OPTIONS, TRACE, PUT, DELETE: safe to send twice (RFC 9110 §9.2.2).
  [[nodiscard]] bool idempotent() const noexcept;
  /// Ready for the next parse, keeping the field list's storage (no allocation a request).
  void reset() noexcept { reset_keeping_fields(*this); }
};

struct response_head {
  int status = 0;
  std::string_view reason;
  int minor = 1;
  std::vector<field> fields;
  framing body = framing::none;
  std::uint64_t length = 0;
  bool length_given = false;
  std::string_view codings;  ///< Transfer-Encoding as sent (an until-close body keeps it)
  bool keep_alive = true;  ///< the server keeps the connection after this response
  std::size_t head_size = 0;
  std::string why;

  /// Ready for the next parse, keeping the field list's storage (no allocation a response).
  void reset() noexcept { reset_keeping_fields(*this); }
};

/// Parses the request head at the start of `bytes`, at most `limit` bytes long.
parse_status parse_request(std::string_view bytes, std::size_t limit, request_head& out);

/// Parses the response head at the start of `bytes`; `to_head`: the request was HEAD (no
/// body, whatever the fields say).
parse_status parse_response(std::string_view bytes, std::size_t limit, bool to_head,
                            response_head& out);

/// The field named `name` (case-insensitive); empty when absent.
std::string_view find_field(const std::vector<field>& fields, std::string_view name) noexcept;

/// Where a chunked body ends, as its bytes go by (they are forwarded as they are: the
/// scanner only follows the chunk sizes, extensions and trailers).
class chunked_scanner {
 public:
  enum class state : std::uint8_t { more, done, bad };
  /// Looks at the next `bytes` of the body; returns how many of them belong to it (all of
  /// them unless it ended inside). `status()` says whether it ended or broke.
  std::size_t feed(std::string_view bytes) noexcept;
  [[nodiscard]] state status() const noexcept { return state_; }

 private:
  enum class at : std::uint8_t { size, size_ws, extension, size_lf, data, data_cr, data_lf,
                                 trailer_start, trailer, trailer_lf, last_lf };
  at at_ = at::size;
  state state_ = state::more;
  std::uint64_t left_ = 0;  // bytes of the current chunk's data still to come
  int digits_ = 0;
  bool line_empty_ = true;  // in the trailers: the line so far is empty
};

/// The request head for the upstream: its request line (HTTP/1.1; HTTP/1.0 with
/// `Connection: keep-alive` for an HTTP/1.0 client, whose response must not come chunked),
/// the client's fields but
/// hop-by-hop ones (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE,
/// Transfer-Encoding, Upgrade, Trailer), the framing written anew from what was parsed (one
/// `Content-Length`, or `Transfer-Encoding: chunked`: a Connection field cannot remove them),
/// `Via: 1.<minor> conpool-proxy` and `X-Forwarded-For` (appended to the client's) with
/// `client`; `Host: upstream` when the client sent none (HTTP/1.0).
void write_upstream_request(const request_head& r, std::string_view client,
                            std::string_view upstream, std::string& out);

/// The response head for the client (HTTP/1.`client_minor`): the status line, the upstream's
/// fields but hop-by-hop ones, `Via`, the framing written anew (one Content-Length; chunked;
/// an until-close body's codings as sent), and `Connection: close` when `keep_alive` is
/// false (`Connection: keep-alive` to an HTTP/1.0 client kept).
void write_client_response(const response_head& r, bool keep_alive, int client_minor,
                           std::string& out);

/// A complete error response the proxy makes itself ("502 Bad Gateway", a short text body).
std::string error_response(int status, std::string_view detail, bool keep_alive);

}  // namespace conpool::proxy
