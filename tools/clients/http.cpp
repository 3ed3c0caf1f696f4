// SPDX-License-Identifier: MIT
#include "http.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace conpool::clients {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct head {
  int status = 0;
  bool http10 = false;
  std::optional<std::size_t> content_length;
  bool chunked = false;
  bool close = false;
  bool keep_alive_token = false;
};

// Parses the status line and headers (without the blank line). False: malformed.
bool parse_head(std::string_view text, head& h) {
  std::size_t eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ') return false;
  h.http10 = line[7] == '0';
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, h.status);
  if (ec != std::errc{} || p != line.data() + 12 || h.status < 100) return false;
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    line = text.substr(0, eol);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e != std::errc{} || q != value.data() + value.size()) return false;
      h.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      h.chunked = icontains(value, "chunked");
    } else if (iequals(name, "connection")) {
      h.close = icontains(value, "close");
      h.keep_alive_token = icontains(value, "keep-alive");
    }
  }
  return true;
}

// Takes up to `want` body bytes from `in` into `r`.
std::size_t take_body(read_buffer& in, std::size_t want, http_response& r, bool keep_body) {
  const std::size_t n = std::min(want, in.data().size());
  if (keep_body) r.body.append(in.data().substr(0, n));
  r.body_size += n;
  in.consume(n);
  return n;
}

task<result<void>> read_sized(flow& f, read_buffer& in, std::size_t length, http_response& r,
                              bool keep_body) {
  for (;;) {
    length -= take_body(in, length, r, keep_body);
    if (length == 0) co_return result<void>{};
    if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
  }
}

// One CRLF-terminated line from `in` (reading more as needed), consumed with its CRLF.
task<result<std::string>> read_line(flow& f, read_buffer& in) {
  for (;;) {
    const std::size_t eol = in.data().find("\r\n");
    if (eol != std::string_view::npos) {
      std::string line(in.data().substr(0, eol));
      in.consume(eol + 2);
      co_return line;
    }
    if (in.data().size() > 8192) co_return protocol_error();
    if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
  }
}

task<result<void>> read_chunked(flow& f, read_buffer& in, http_response& r, bool keep_body) {
  for (;;) {
    result<std::string> size_line = co_await read_line(f, in);
    if (!size_line) co_return fail(size_line.error());
    std::size_t size = 0;
    const std::string_view digits = std::string_view(*size_line).substr(0, size_line->find(';'));
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
    if (ec != std::errc{} || p == digits.data()) co_return protocol_error();
    if (size == 0) break;
    if (auto body = co_await read_sized(f, in, size, r, keep_body); !body) {
      co_return fail(body.error());
    }
    result<std::string> crlf = co_await read_line(f, in);
    if (!crlf) co_return fail(crlf.error());
    if (!crlf->empty()) co_return protocol_error();
  }
  for (;;) {  // trailers, up to the blank line
    result<std::string> trailer = co_await read_line(f, in);
    if (!trailer) co_return fail(trailer.error());
    if (trailer->empty()) co_return result<void>{};
  }
}

}  // namespace

std::string http_get_request(std::string_view host, std::string_view path) {
  std::string out;
  out.reserve(32 + host.size() + path.size());
  out.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n\r\n");
  return out;
}

task<result<http_response>> read_http_response(flow& f, read_buffer& in, bool keep_body) {
  head h;
  do {  // interim 1xx responses (100 Continue, 103 Early Hints) come before the real one
    std::size_t end = 0;
    while ((end = in.data().find("\r\n\r\n")) == std::string_view::npos) {
      if (in.data().size() > 64 * 1024) co_return protocol_error();  // headers this long: not HTTP
      if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
    }
    h = head{};
    if (!parse_head(in.data().substr(0, end + 2), h)) co_return protocol_error();
    in.consume(end + 4);
  } while (h.status >= 100 && h.status < 200 && h.status != 101);
  http_response r;
  r.status = h.status;
  r.keep_alive = h.http10 ? h.keep_alive_token : !h.close;
  const bool no_body = h.status < 200 || h.status == 204 || h.status == 304;
  if (no_body) co_return r;
  if (h.chunked) {
    if (auto b = co_await read_chunked(f, in, r, keep_body); !b) co_return fail(b.error());
  } else if (h.content_length) {
    if (auto b = co_await read_sized(f, in, *h.content_length, r, keep_body); !b) {
      co_return fail(b.error());
    }
  } else {
    // Neither: the body runs to the server's close, and the connection is done.
    r.keep_alive = false;
    for (;;) {
      take_body(in, in.data().size(), r, keep_body);
      result<void> more = co_await in.fill(f);
      if (!more) {
        if (more.error() == errc::end_of_stream) break;
        co_return fail(more.error());
      }
    }
  }
  co_return r;
}

}  // namespace conpool::clients
