// SPDX-License-Identifier: MIT
#include "redis.hpp"

#include <charconv>

namespace conpool::clients {
namespace {

// The next CRLF-terminated line, without consuming it; reads more as needed.
task<result<std::size_t>> line_end(flow& f, read_buffer& in) {
  for (;;) {
    const std::size_t eol = in.data().find("\r\n");
    if (eol != std::string_view::npos) co_return eol;
    if (in.data().size() > 64 * 1024) co_return protocol_error();
    if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
  }
}

bool parse_int(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

task<result<resp_reply>> read_reply(flow& f, read_buffer& in, int depth) {
  result<std::size_t> eol = co_await line_end(f, in);
  if (!eol) co_return fail(eol.error());
  resp_reply r;
  const std::string_view line = in.data().substr(0, *eol);
  if (line.empty()) co_return protocol_error();
  r.kind = line[0];
  const std::string_view rest = line.substr(1);
  switch (r.kind) {
    case '+':
    case '-':
      r.text = std::string(rest);
      in.consume(*eol + 2);
      co_return r;
    case ':':
      if (!parse_int(rest, r.integer)) co_return protocol_error();
      in.consume(*eol + 2);
      co_return r;
    case '$': {
      std::int64_t len = 0;
      // Redis caps a bulk string at 512 MB: a longer one is not a Redis reply.
      if (!parse_int(rest, len) || len < -1 || len > (512 << 20)) co_return protocol_error();
      in.consume(*eol + 2);
      if (len == -1) {
        r.nil = true;
        co_return r;
      }
      const auto need = static_cast<std::size_t>(len) + 2;
      while (in.data().size() < need) {
        if (auto more = co_await in.fill(f); !more) co_return fail(more.error());
      }
      if (in.data().substr(need - 2, 2) != "\r\n") co_return protocol_error();
      r.text = std::string(in.data().substr(0, need - 2));
      in.consume(need);
      co_return r;
    }
    case '*': {
      if (!parse_int(rest, r.integer) || r.integer < -1 || depth > 8) co_return protocol_error();
      in.consume(*eol + 2);
      r.nil = r.integer == -1;
      for (std::int64_t i = 0; i < r.integer; ++i) {
        result<resp_reply> element = co_await read_reply(f, in, depth + 1);
        if (!element) co_return fail(element.error());
      }
      co_return r;
    }
    default:
      co_return protocol_error();
  }
}

}  // namespace

std::string resp_command(std::span<const std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    out.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
  }
  return out;
}

task<result<resp_reply>> read_resp_reply(flow& f, read_buffer& in) {
  return read_reply(f, in, 0);
}

task<result<resp_reply>> resp_call(flow& f, read_buffer& in, std::string_view command) {
  if (auto w = co_await f.write_all(command); !w) co_return fail(w.error());
  co_return co_await read_resp_reply(f, in);
}

task<bool> redis_ping(flow& f) {
  read_buffer in(64);
  result<resp_reply> r = co_await resp_call(f, in, "PING\r\n");
  co_return r && r->kind == '+' && r->text == "PONG" && in.data().empty();
}

}  // namespace conpool::clients
