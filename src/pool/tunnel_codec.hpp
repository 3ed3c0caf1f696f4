// SPDX-License-Identifier: MIT
#pragma once
// The bytes of the two tunnel protocols: HTTP/1.1 CONNECT (RFC 9110 §9.3.6) and SOCKS5 CONNECT
// (RFC 1928, username/password RFC 1929). Pure functions over bytes, no I/O (tunnel.cpp does
// that); the fuzz target reads proxies' replies with them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <conpool/proxy.hpp>


namespace conpool::detail {

// --- HTTP CONNECT ---

/// "CONNECT host:port HTTP/1.1", Host, and Basic Proxy-Authorization when `p` has a user.
std::string http_connect_request(std::string_view host, std::uint16_t port,
                                 const proxy_config& p);

/// Where the response head in `bytes` ends (just past its blank line), or 0 while it has not
/// all arrived.
std::size_t http_head_end(std::string_view bytes) noexcept;

/// The status of a response head ("HTTP/1.1 200 Connection established\r\n..."): 100 to 599,
/// or 0 when the status line is malformed. `status_line` gets the first line (for messages).
int http_connect_status(std::string_view head, std::string& status_line);

// --- SOCKS5 ---

/// The method offer: "no authentication", and "username/password" too when `p` has a user.
std::string socks5_hello(const proxy_config& p);
/// RFC 1929's request: version 1, the user and password with their lengths.
std::string socks5_login(const proxy_config& p);
/// CONNECT to `host`: an IPv4 or IPv6 address as such (a zone dropped), a name as a name (the
/// proxy resolves it).
std::string socks5_connect(std::string_view host, std::uint16_t port);

/// A CONNECT reply's first 5 bytes (VER REP RSV ATYP and the address's first byte) → how many
/// bytes of it are still to read (the rest of the bound address and the port), or -1 when the
/// address type is none of RFC 1928's.
int socks5_reply_rest(const unsigned char (&head)[5]) noexcept;

/// RFC 1928 §6's words for a reply code ("connection refused", ...).
std::string socks5_reply_text(unsigned char code);

/// "dXNlcjpwYXNz": `bytes` in base64 (RFC 4648 §4, padded).
std::string base64(std::string_view bytes);

}  // namespace conpool::detail
