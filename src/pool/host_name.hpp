// SPDX-License-Identifier: MIT
#pragma once
// What conpool accepts as a host to dial, and how bad text is shown in a message. Pure functions
// over bytes (no I/O, no conpool types): the endpoint and proxy parsers use them, and so do their
// fuzz targets.

#include <cstdint>
#include <string>
#include <string_view>

namespace conpool::detail {

/// Why `host` is not something conpool dials, in words naming the offending byte; empty when it
/// is one of:
/// - an IPv4 address in dotted decimal ("127.0.0.1");
/// - an IPv6 address without brackets ("::1"), with an optional zone ("fe80::1%eth0");
/// - an RFC 1123 name: labels of 1–63 letters, digits, '-' (not first or last) or '_', at most
///   253 bytes without one optional trailing dot, the last label not all digits.
/// Refused among others: NUL, controls, spaces, "/ @ ? # % \ [ ]", IPv4 in forms inet_aton takes
/// but dotted decimal does not ("127.1", "0x7f.0.0.1").
std::string host_problem(std::string_view host);

/// Splits a URL's authority, "host:port" or "[ipv6]:port", into `host` (without brackets) and
/// `port` (1 to 65535). The host itself is not checked here (`host_problem`). Returns what is
/// wrong in words, or empty.
std::string split_authority(std::string_view text, std::string& host, std::uint16_t& port);

/// "host:port", brackets around an IPv6 host: what `split_authority` reads back.
std::string join_authority(std::string_view host, std::uint16_t port);

/// True when `host` is an IPv4 or IPv6 literal (no name to resolve, no SNI to send).
bool is_ip_literal(std::string_view host) noexcept;

/// Why `path` is not a Unix domain socket conpool dials (absolute "/..." or abstract "@...",
/// 2 to 107 bytes, no NUL); empty when it is.
std::string unix_path_problem(std::string_view path);

/// `text` in double quotes for a message: controls and bytes from 0x7f as \xNN, cut after
/// `limit` bytes ("..." marks the cut).
std::string quoted(std::string_view text, std::size_t limit = 80);

}  // namespace conpool::detail
