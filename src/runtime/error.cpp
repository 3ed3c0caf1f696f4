// SPDX-License-Identifier: MIT
#include <conpool/endpoint.hpp>
#include <conpool/error.hpp>

namespace conpool {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "conpool"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::pool_closed: return "pool closed";
      case errc::acquire_timeout: return "no connection free within acquire_timeout";
      case errc::connect_timeout: return "connect timed out";
      case errc::circuit_open: return "circuit breaker open";
      case errc::unhealthy: return "connection unhealthy";
      case errc::tls_handshake_failed: return "TLS handshake failed";
      case errc::tls_verify_failed: return "TLS peer verification failed";
      case errc::resolve_failed: return "host name did not resolve";
      case errc::timed_out: return "deadline passed";
      case errc::end_of_stream: return "peer closed the stream early";
      case errc::bad_address: return "not an IPv4 or IPv6 address literal with a port";
      case errc::tunnel_failed: return "proxy refused the tunnel";
    }
    return "unknown conpool error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

std::string describe(std::error_code e, std::string_view subject, std::string_view what) {
  std::string out(subject);
  if (!what.empty()) {
    out += ": ";
    out += what;
  }
  out += ": ";
  out += e.message();
  return out;
}

std::string describe(std::error_code e, const endpoint& ep, std::string_view what) {
  return describe(e, ep.to_string(), what);
}

}  // namespace conpool
