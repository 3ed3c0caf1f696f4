// SPDX-License-Identifier: MIT
#include "tunnel_codec.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "host_name.hpp"

namespace conpool::detail {

std::string base64(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string http_connect_request(std::string_view host, std::uint16_t port,
                                 const proxy_config& p) {
  // An IPv6 zone means nothing to the proxy (and a raw '%' is not URI syntax): dropped, as
  // socks5_connect does.
  const std::string authority = join_authority(host.substr(0, host.find('%')), port);
  std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!p.username.empty()) {
    out += "Proxy-Authorization: Basic " + base64(p.username + ":" + p.password) + "\r\n";
  }
  return out + "\r\n";
}

std::size_t http_head_end(std::string_view bytes) noexcept {
  const std::size_t end = bytes.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

int http_connect_status(std::string_view head, std::string& status_line) {
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  status_line = quoted(line, 200);
  // "HTTP/1.x SSS[ reason]"
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ') return 0;
  if (line.size() > 12 && line[12] != ' ') return 0;
  int status = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc{} || end != line.data() + 12 || status < 100 || status > 599) return 0;
  return status;
}

std::string socks5_hello(const proxy_config& p) {
  // VER 5, NMETHODS, METHODS: 0 = none, 2 = username/password.
  if (p.username.empty()) return std::string("\x05\x01\x00", 3);
  return std::string("\x05\x02\x00\x02", 4);  // the proxy chooses
}

std::string socks5_login(const proxy_config& p) {
  std::string out(1, '\x01');
  out += static_cast<char>(p.username.size());
  out += p.username;
  out += static_cast<char>(p.password.size());
  out += p.password;
  return out;
}

std::string socks5_connect(std::string_view host, std::uint16_t port) {
  std::string out("\x05\x01\x00", 3);  // VER, CMD CONNECT, RSV
  std::string text(host.substr(0, host.find('%')));
  unsigned char address[16];
  if (::inet_pton(AF_INET, text.c_str(), address) == 1) {
    out += '\x01';
    out.append(reinterpret_cast<const char*>(address), 4);
  } else if (::inet_pton(AF_INET6, text.c_str(), address) == 1) {
    out += '\x04';
    out.append(reinterpret_cast<const char*>(address), 16);
  } else {
    out += '\x03';
    out += static_cast<char>(host.size());  // a checked host: at most 254 bytes
    out += host;
  }
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

int socks5_reply_rest(const unsigned char (&head)[5]) noexcept {
  switch (head[3]) {
    case 1: return 4 - 1 + 2;
    case 4: return 16 - 1 + 2;
    case 3: return head[4] + 2;
    default: return -1;
  }
}

std::string socks5_reply_text(unsigned char code) {
  switch (code) {
    case 0: return "succeeded";
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "reply code " + std::to_string(code);
  }
}

}  // namespace conpool::detail
