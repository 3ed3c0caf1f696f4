// SPDX-License-Identifier: MIT
#pragma once
// A self-signed certificate for "localhost" (ECDSA P-256), made with the openssl CLI: the CA
// file and the server certificate are the same file.

#include <memory>
#include <string>

#include "peer_process.hpp"
#include "process.hpp"

namespace conpool::testing {

struct self_signed {
  temp_dir dir;
  std::string cert = (dir.path / "cert.pem").string();
  std::string key = (dir.path / "key.pem").string();

  explicit self_signed(const std::string& openssl) {
    const bench::program_result made = bench::run_program(
        {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"});
    REQUIRE_MESSAGE(made.status == 0, made.err);
  }
};

/// nginx speaking HTTPS (keep-alive, 1000 requests a connection) with a fresh self-signed
/// certificate for "localhost".
struct https_nginx {
  self_signed tls;
  nginx_server server;
  https_nginx(const std::string& nginx, const std::string& openssl)
      : tls(openssl), server(nginx, 1000, std::pair{tls.cert, tls.key}) {}

  /// Started, or null (with a message: the test is skipped) where nginx or openssl is absent.
  static std::unique_ptr<https_nginx> start() {
    const std::string nginx = find_program("nginx");
    const std::string openssl = find_program("openssl");
    if (nginx.empty() || openssl.empty()) {
      MESSAGE("nginx or openssl is not installed: skipped");
      return nullptr;
    }
    return std::make_unique<https_nginx>(nginx, openssl);
  }
};

}  // namespace conpool::testing
