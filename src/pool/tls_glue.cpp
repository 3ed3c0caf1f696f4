// SPDX-License-Identifier: MIT
#include "tls_glue.hpp"

#include <conpool/tls.hpp>

#include "conpool_config.h"
#include "flow_access.hpp"
#include "slab.hpp"
#if CONPOOL_HAVE_TLS
#include "tls_stream.hpp"
#endif

namespace conpool::detail {

#if CONPOOL_HAVE_TLS

task<result<void>> tls_open(flow& f, endpoint_slab& slab) {
  const tls_config& tls = *slab.ep.tls;
  const std::string name = tls.servername.value_or(slab.ep.host);
  result<void> r = co_await detail_flow_access::start_tls(
      f, *tls.context, name, static_cast<WOLFSSL_SESSION*>(slab.tls_session));
  if (r) {
    tls_remember(slab, f);
  } else {
    slab.last_error = describe(r.error(), slab.ep, "connect") + ": " + f.tls_reason();
  }
  co_return r;
}

std::span<std::byte> tls_watch_buffer(flow& f) noexcept {
  return detail_flow_access::tls(f)->watch_buffer();
}

tls_watch tls_absorb(flow& f, std::size_t n, bool judge) noexcept {
  switch (detail_flow_access::tls(f)->absorb(n, judge)) {
    case tls_stream::verdict::quiet:
      return tls_watch::quiet;
    case tls_stream::verdict::spoke:
      return tls_watch::spoke;
    case tls_stream::verdict::closed:
      break;
  }
  return tls_watch::closed;
}

void tls_remember(endpoint_slab& slab, flow& f) noexcept {
  // Only sessions of full handshakes (and the tickets that follow them) are kept: the session
  // wolfSSL 5.5 hands back from a resumed TLS 1.3 connection fails the next resumption (the
  // server answers with a fatal alert), so a resumed connection keeps the one it came from.
  if (f.tls_resumed()) return;
  WOLFSSL_SESSION* fresh = detail_flow_access::tls(f)->session();
  if (fresh == nullptr) return;
  free_session(static_cast<WOLFSSL_SESSION*>(slab.tls_session));
  slab.tls_session = fresh;
}

std::span<const std::byte> tls_close_notify(flow& f) noexcept {
  return detail_flow_access::tls(f)->close_notify();
}

void tls_forget(endpoint_slab& slab) noexcept {
  free_session(static_cast<WOLFSSL_SESSION*>(slab.tls_session));
  slab.tls_session = nullptr;
}

#else

task<result<void>> tls_open(flow&, endpoint_slab&) {
  co_return fail(errc::tls_handshake_failed);
}
std::span<std::byte> tls_watch_buffer(flow&) noexcept { return {}; }
tls_watch tls_absorb(flow&, std::size_t, bool) noexcept { return tls_watch::closed; }
void tls_remember(endpoint_slab&, flow&) noexcept {}
std::span<const std::byte> tls_close_notify(flow&) noexcept { return {}; }
void tls_forget(endpoint_slab&) noexcept {}

#endif

}  // namespace conpool::detail
