// SPDX-License-Identifier: MIT
#pragma once
// Asking a proxy for a tunnel over a connection to it: HTTP CONNECT or SOCKS5 (the bytes in
// tunnel_codec.hpp). Part of the open, under its connect_timeout.

#include <string>

#include <conpool/endpoint.hpp>
#include <conpool/error.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool::detail {

/// Asks the proxy `ep.proxy`, connected on `f`, for a tunnel to `ep.host:ep.port`. On success
/// `f` carries the target's bytes and nothing of the proxy's reply. A refusal, a reply that is
/// not the protocol's, or the proxy closing or failing mid-way gives `errc::tunnel_failed` with
/// the reason in `why` ("proxy http://127.0.0.1:8888 replied \"HTTP/1.0 403 Filtered\"");
/// cancellation stays `operation_canceled`.
task<result<void>> open_tunnel(flow& f, const endpoint& ep, std::string& why);

}  // namespace conpool::detail
