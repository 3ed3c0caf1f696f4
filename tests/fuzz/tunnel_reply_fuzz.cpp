// SPDX-License-Identifier: MIT
// The tunnel codecs on any bytes as a proxy's reply: an HTTP CONNECT reply head (where it ends,
// its status) and a SOCKS5 CONNECT reply's size; base64 of the bytes. No crash, and results in
// their ranges.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "tunnel_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t end = conpool::detail::http_head_end(bytes);
  FUZZ_CHECK(end == 0 || (end >= 4 && end <= size && bytes.substr(end - 4, 4) == "\r\n\r\n"));
  std::string line;
  const int status = conpool::detail::http_connect_status(bytes.substr(0, end), line);
  FUZZ_CHECK(status == 0 || (status >= 100 && status <= 599));
  FUZZ_CHECK(line.size() >= 2 && line.front() == '"');
  if (size >= 5) {
    unsigned char head[5];
    for (int i = 0; i < 5; ++i) head[i] = data[i];
    const int rest = conpool::detail::socks5_reply_rest(head);
    FUZZ_CHECK(rest >= -1 && rest <= 257);
    FUZZ_CHECK(!conpool::detail::socks5_reply_text(head[1]).empty());
  }
  FUZZ_CHECK(conpool::detail::base64(bytes).size() == (size + 2) / 3 * 4);
  return 0;
}
