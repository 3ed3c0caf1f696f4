// SPDX-License-Identifier: MIT
#pragma once
// What the pool needs of a flow beyond its public face: its TLS stream, and a handshake that
// offers a saved session.

#include <string>

#include <conpool/flow.hpp>

struct WOLFSSL_SESSION;

namespace conpool {

struct detail_flow_access {
  static detail::tls_stream* tls(flow& f) noexcept { return f.tls_.get(); }
  /// flow::start_tls, offering `resume` (may be null).
  static task<result<void>> start_tls(flow& f, const tls_context& ctx, std::string server_name,
                                      WOLFSSL_SESSION* resume);
};

}  // namespace conpool
