// SPDX-License-Identifier: MIT
#pragma once
/// `tls_context`: the client side of TLS for pooled connections (wolfSSL underneath).
///
/// Secure by default: the peer's certificate is verified against the system's CA bundle (or the
/// CA file / directory given), and its name against the endpoint's server name (SNI value,
/// else host). Turning verification off is one explicit, loudly named option. TLS 1.2 is the
/// minimum unless TLS 1.3 is asked for. One context serves any number of endpoints and
/// connections; make it once, share it.
///
/// Example:
///   auto ctx = tls_context::make({.ca_file = "ca.pem", .alpn = {"http/1.1"}});
///   endpoint api{"api.example.com", 443, tls_config{ctx}};
///   co_await p.with_connection(api, ...);   // TCP + TLS handshake, then pooled like plain

#include <memory>
#include <string>
#include <vector>

namespace conpool {

enum class tls_version { tls12, tls13 };

struct tls_options {
  /// The oldest protocol version accepted.
  tls_version min_version = tls_version::tls12;
  /// CA certificates (PEM) to verify servers against; both empty: the system's CA bundle.
  std::string ca_file{};
  std::string ca_dir{};
  /// ALPN protocols offered, in order of preference ("h2", "http/1.1"); none: no ALPN.
  std::vector<std::string> alpn{};
  /// A client certificate chain and its key (PEM), for servers that ask (mutual TLS).
  std::string cert_file{};
  std::string key_file{};
  /// INSECURE: accept any certificate for any name. For tests against throwaway servers only;
  /// a connection made this way can be intercepted.
  bool insecure_skip_verify = false;
};

class tls_context {
 public:
  /// A context for `options`. Throws std::invalid_argument naming the option and value that
  /// could not be used (unreadable CA file, a certificate without its key, ...), and
  /// std::logic_error in a build without TLS.
  static std::shared_ptr<tls_context> make(tls_options options = {});
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  [[nodiscard]] const tls_options& options() const noexcept { return options_; }

  /// The library's handle (a WOLFSSL_CTX*), for the connection code.
  [[nodiscard]] void* native_handle() const noexcept { return ctx_; }

 private:
  tls_context(tls_options options, void* ctx) noexcept;
  tls_options options_;
  void* ctx_;
};

}  // namespace conpool
