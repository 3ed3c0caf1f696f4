// SPDX-License-Identifier: MIT
// endpoint::parse on any bytes: it accepts or throws std::invalid_argument (nothing else, no
// crash); what it accepts passes problem() (but a tls:// endpoint's missing context) and reads
// back from to_url() to an equal endpoint.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include <conpool/endpoint.hpp>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  conpool::endpoint e;
  try {
    e = conpool::endpoint::parse(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  if (!e.tls) FUZZ_CHECK(e.problem().empty());
  const std::string url = e.to_url();
  FUZZ_CHECK(conpool::endpoint::parse(url) == e);  // throws (uncaught: a crash) if refused
  FUZZ_CHECK(!e.to_string().empty());
  return 0;
}
