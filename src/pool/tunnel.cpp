// SPDX-License-Identifier: MIT
#include "tunnel.hpp"

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <span>

#include <conpool/io.hpp>

#include "host_name.hpp"
#include "tunnel_codec.hpp"

namespace conpool::detail {
namespace {

constexpr std::size_t max_reply_head = 16 * 1024;

// A failed read or write while talking to the proxy, as the reason the tunnel failed.
std::error_code broke(std::error_code e, const proxy_config& p, std::string_view doing,
                      std::string& why) {
  if (e == std::errc::operation_canceled) return e;
  why = "proxy " + p.to_string() + ": " + std::string(doing) + ": " +
        (e == errc::end_of_stream ? "closed the connection" : e.message());
  return make_error_code(errc::tunnel_failed);
}

std::error_code refused(const proxy_config& p, std::string_view said, std::string& why) {
  why = "proxy " + p.to_string() + " " + std::string(said);
  return make_error_code(errc::tunnel_failed);
}

task<result<void>> read_bytes(flow& f, unsigned char* into, std::size_t n) {
  return f.read_exact(std::as_writable_bytes(std::span(into, n)));
}

task<result<void>> http_tunnel(flow& f, const endpoint& ep, std::string& why) {
  const proxy_config& p = *ep.proxy;
  if (result<void> sent = co_await f.write_all(http_connect_request(ep.host, ep.port, p)); !sent) {
    co_return fail(broke(sent.error(), p, "sending CONNECT", why));
  }
  // The head is peeked, then only its own bytes taken: what follows it is the target's (a
  // server that speaks first may already have).
  std::string head;
  std::array<std::byte, 2048> buffer;
  std::size_t end = 0;
  while (end == 0) {
    result<std::size_t> n = co_await io::recv(f.native_handle(), buffer, MSG_PEEK);
    if (!n) co_return fail(broke(n.error(), p, "reading its reply", why));
    if (*n == 0) co_return fail(broke(make_error_code(errc::end_of_stream), p, "reading its reply", why));
    const std::size_t before = head.size();
    head.append(reinterpret_cast<const char*>(buffer.data()), *n);
    end = http_head_end(head);
    const std::size_t take = end != 0 ? end - before : *n;
    if (result<void> r = co_await f.read_exact(std::span(buffer.data(), take)); !r) {
      co_return fail(broke(r.error(), p, "reading its reply", why));
    }
    if (end == 0 && head.size() > max_reply_head) {
      co_return fail(refused(p, "sent a reply head over 16 KiB", why));
    }
  }
  head.resize(end);
  std::string status_line;
  const int status = http_connect_status(head, status_line);
  if (status == 0) co_return fail(refused(p, "sent no HTTP status line: " + status_line, why));
  // Any 2xx opens the tunnel (RFC 9110 §9.3.6).
  if (status < 200 || status > 299) co_return fail(refused(p, "replied " + status_line, why));
  co_return result<void>{};
}

task<result<void>> socks5_tunnel(flow& f, const endpoint& ep, std::string& why) {
  const proxy_config& p = *ep.proxy;
  if (result<void> sent = co_await f.write_all(socks5_hello(p)); !sent) {
    co_return fail(broke(sent.error(), p, "sending its greeting", why));
  }
  unsigned char method[2];
  if (result<void> r = co_await read_bytes(f, method, 2); !r) {
    co_return fail(broke(r.error(), p, "reading its method", why));
  }
  if (method[0] != 5) {
    co_return fail(refused(p, "is not a SOCKS5 proxy (version " + std::to_string(method[0]) +
                                  ")", why));
  }
  if (method[1] == 0xff || (method[1] == 2 && p.username.empty()) || (method[1] != 0 && method[1] != 2)) {
    co_return fail(refused(p, std::string("accepts none of the offered methods (") +
                                  (p.username.empty() ? "no authentication"
                                                      : "none, username/password") + ")",
                           why));
  }
  if (method[1] == 2) {
    if (result<void> sent = co_await f.write_all(socks5_login(p)); !sent) {
      co_return fail(broke(sent.error(), p, "sending user and password", why));
    }
    unsigned char status[2];
    if (result<void> r = co_await read_bytes(f, status, 2); !r) {
      co_return fail(broke(r.error(), p, "reading its answer to user and password", why));
    }
    if (status[0] != 1) {
      co_return fail(refused(p, "sent a reply that is not RFC 1929's (version " +
                                    std::to_string(status[0]) + ")", why));
    }
    if (status[1] != 0) {
      co_return fail(refused(p, "refused user " + quoted(p.username) + " and its password", why));
    }
  }
  if (result<void> sent = co_await f.write_all(socks5_connect(ep.host, ep.port)); !sent) {
    co_return fail(broke(sent.error(), p, "sending CONNECT", why));
  }
  unsigned char reply[5];
  if (result<void> r = co_await read_bytes(f, reply, 5); !r) {
    co_return fail(broke(r.error(), p, "reading its CONNECT reply", why));
  }
  if (reply[0] != 5) co_return fail(refused(p, "sent a reply that is not SOCKS5", why));
  if (reply[1] != 0) {
    co_return fail(refused(p, "could not connect to " + ep.to_url().substr(6) + ": " +
                                  socks5_reply_text(reply[1]), why));
  }
  const int rest = socks5_reply_rest(reply);
  if (rest < 0) co_return fail(refused(p, "sent an unknown address type in its reply", why));
  unsigned char bound[257];
  if (result<void> r = co_await read_bytes(f, bound, static_cast<std::size_t>(rest)); !r) {
    co_return fail(broke(r.error(), p, "reading its CONNECT reply", why));
  }
  co_return result<void>{};
}

}  // namespace

task<result<void>> open_tunnel(flow& f, const endpoint& ep, std::string& why) {
  if (ep.proxy->kind == proxy_config::protocol::socks5) return socks5_tunnel(f, ep, why);
  return http_tunnel(f, ep, why);
}

}  // namespace conpool::detail
