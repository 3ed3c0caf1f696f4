// SPDX-License-Identifier: MIT
// proxy_config::parse on any bytes: accepts or throws std::invalid_argument; what it accepts
// passes problem(), reads back from to_url() to an equal value, and to_string() is that URL
// with the password left out.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include <conpool/proxy.hpp>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  conpool::proxy_config p;
  try {
    p = conpool::proxy_config::parse(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  FUZZ_CHECK(p.problem().empty());
  FUZZ_CHECK(conpool::proxy_config::parse(p.to_url()) == p);
  conpool::proxy_config without = p;
  without.password.clear();
  FUZZ_CHECK(p.to_string() == without.to_url());
  return 0;
}
