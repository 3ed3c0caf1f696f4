// SPDX-License-Identifier: MIT
#pragma once
// A self-signed certificate for "localhost" (ECDSA P-256), made with the openssl CLI: the CA
// file and the server certificate are the same file.

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

}  // namespace conpool::testing
