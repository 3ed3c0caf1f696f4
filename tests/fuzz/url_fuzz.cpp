// SPDX-License-Identifier: MIT
// conpool-bench's target URLs (tools/clients/url) on any bytes: accepted or std::invalid_argument;
// what is accepted prints as a URL that reads back to the same scheme, host, port (and path for
// http).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "fuzz_check.hpp"
#include "url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  conpool::clients::url u;
  try {
    u = conpool::clients::url::parse(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const conpool::clients::url again = conpool::clients::url::parse(u.to_string());
  FUZZ_CHECK(again.scheme == u.scheme && again.host == u.host && again.port == u.port);
  if (u.scheme == "http" || u.scheme == "https") FUZZ_CHECK(again.path == u.path);
  return 0;
}
