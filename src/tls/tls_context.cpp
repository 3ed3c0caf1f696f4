// SPDX-License-Identifier: MIT
#include <conpool/tls.hpp>

#include <stdexcept>
#include <string>

#include "conpool_config.h"

#if CONPOOL_HAVE_TLS
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#endif

namespace conpool {

tls_context::tls_context(tls_options options, void* ctx) noexcept
    : options_(std::move(options)), ctx_(ctx) {}

#if CONPOOL_HAVE_TLS

namespace {

[[noreturn]] void bad(const std::string& option, const std::string& value, const char* why) {
  throw std::invalid_argument("conpool::tls_context: " + option + " \"" + value + "\": " + why);
}

struct ctx_owner {
  WOLFSSL_CTX* ctx;
  ~ctx_owner() {
    if (ctx != nullptr) wolfSSL_CTX_free(ctx);
  }
};

}  // namespace

std::shared_ptr<tls_context> tls_context::make(tls_options o) {
  static const bool initialised = wolfSSL_Init() == WOLFSSL_SUCCESS;
  if (!initialised) throw std::runtime_error("conpool::tls_context: wolfSSL_Init failed");
  ctx_owner owner{wolfSSL_CTX_new(wolfSSLv23_client_method())};
  WOLFSSL_CTX* ctx = owner.ctx;
  if (ctx == nullptr) throw std::bad_alloc();
  const int min = o.min_version == tls_version::tls13 ? WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2;
  if (wolfSSL_CTX_SetMinVersion(ctx, min) != WOLFSSL_SUCCESS) {
    throw std::invalid_argument("conpool::tls_context: min_version not supported by this wolfSSL");
  }
  if (o.insecure_skip_verify) {
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  } else {
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, nullptr);
    if (o.ca_file.empty() && o.ca_dir.empty()) {
      if (wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
        throw std::invalid_argument(
            "conpool::tls_context: no ca_file or ca_dir, and the system CA bundle could not be "
            "loaded");
      }
    } else if (wolfSSL_CTX_load_verify_locations(ctx, o.ca_file.empty() ? nullptr : o.ca_file.c_str(),
                                                 o.ca_dir.empty() ? nullptr : o.ca_dir.c_str()) !=
               WOLFSSL_SUCCESS) {
      if (!o.ca_file.empty()) bad("ca_file", o.ca_file, "no readable PEM CA certificate there");
      bad("ca_dir", o.ca_dir, "no readable PEM CA certificate there");
    }
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    bad(o.cert_file.empty() ? "key_file" : "cert_file",
        o.cert_file.empty() ? o.key_file : o.cert_file, "needs both cert_file and key_file");
  }
  if (!o.cert_file.empty()) {
    if (wolfSSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != WOLFSSL_SUCCESS) {
      bad("cert_file", o.cert_file, "not a readable PEM certificate chain");
    }
    if (wolfSSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), WOLFSSL_FILETYPE_PEM) !=
        WOLFSSL_SUCCESS) {
      bad("key_file", o.key_file, "not a readable PEM private key for cert_file");
    }
  }
  for (const std::string& p : o.alpn) {
    if (p.empty() || p.size() > 255 || p.find(',') != std::string::npos) {
      bad("alpn", p, "a protocol name is 1 to 255 bytes, without ','");
    }
  }
  // Tickets: a new connection to an endpoint resumes the last session instead of a full
  // handshake (the sessions are kept per endpoint by the pool).
  wolfSSL_CTX_UseSessionTicket(ctx);
  owner.ctx = nullptr;
  return std::shared_ptr<tls_context>(new tls_context(std::move(o), ctx));
}

tls_context::~tls_context() { wolfSSL_CTX_free(static_cast<WOLFSSL_CTX*>(ctx_)); }

#else

std::shared_ptr<tls_context> tls_context::make(tls_options) {
  throw std::logic_error("conpool::tls_context: this conpool was built without TLS (-Dtls)");
}

tls_context::~tls_context() = default;

#endif

}  // namespace conpool
