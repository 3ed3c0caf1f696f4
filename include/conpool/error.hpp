// SPDX-License-Identifier: MIT
#pragma once
/// conpool's errors: `result<T>`, the `errc` codes and their category.
///
/// Every fallible conpool operation returns `result<T>` (`std::expected<T, std::error_code>`).
/// Errors of the kernel keep their errno in `std::system_category()`, so they compare equal to
/// `std::errc` values; errors that conpool itself decides are `conpool::errc`.
///
/// Example:
///   result<flow> f = co_await connect(addr, 1s);
///   if (!f && f.error() == std::errc::connection_refused) { ... }
///   if (!f) log(describe(f.error(), addr.to_string()));  // "127.0.0.1:5: connect: ..."

#include <expected>
#include <string>
#include <string_view>
#include <system_error>

namespace conpool {

/// The value of a fallible operation, or the error that stopped it.
template <class T>
using result = std::expected<T, std::error_code>;

/// Errors decided by conpool (the kernel's own errors stay in `std::system_category()`).
enum class errc {
  pool_closed = 1,       ///< the pool is closed: no new acquisitions
  acquire_timeout,       ///< no connection became free within `acquire_timeout`
  connect_timeout,       ///< the open (resolve, connect, tunnel, TLS) outlasted `connect_timeout`
  circuit_open,          ///< the endpoint's circuit breaker is open
  unhealthy,             ///< the connection failed its health check
  tls_handshake_failed,  ///< the TLS handshake failed
  tls_verify_failed,     ///< the peer's certificate or name did not verify
  resolve_failed,        ///< the host name did not resolve
  timed_out,             ///< a `with_timeout` deadline passed before the task finished
  end_of_stream,         ///< the peer closed the stream before the bytes asked for arrived
  bad_address,           ///< not an IPv4 or IPv6 literal, or no port
  tunnel_failed,         ///< the proxy refused the tunnel (its reply in `pool::last_error`)
};

/// The category of `conpool::errc`; its name is "conpool".
const std::error_category& error_category() noexcept;

/// Makes `errc` usable as a `std::error_code` (found by ADL).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// An unexpected `result` holding `e`: `return fail(errc::timed_out);`.
inline std::unexpected<std::error_code> fail(std::error_code e) noexcept {
  return std::unexpected(e);
}
inline std::unexpected<std::error_code> fail(errc e) noexcept {
  return std::unexpected(make_error_code(e));
}
/// An unexpected `result` holding a system error: `return fail(std::errc::operation_canceled);`.
inline std::unexpected<std::error_code> fail(std::errc e) noexcept {
  return std::unexpected(std::make_error_code(e));
}

/// The error of a negative io_uring result (`-errno`), in the system category.
inline std::error_code errno_error(int negative_errno) noexcept {
  return {-negative_errno, std::system_category()};
}

/// Puts an error into words naming what failed: `describe(e, "127.0.0.1:80", "connect")` gives
/// "127.0.0.1:80: connect: Connection refused". `what` may be empty.
std::string describe(std::error_code e, std::string_view subject, std::string_view what = {});

}  // namespace conpool

template <>
struct std::is_error_code_enum<conpool::errc> : std::true_type {};
