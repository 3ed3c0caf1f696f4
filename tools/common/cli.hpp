// SPDX-License-Identifier: MIT
#pragma once
// Command-line checks shared by conpool-bench and conpool-proxy: a bad option is named with
// its value and what is wrong with it (std::invalid_argument; the tools exit 2 with it).

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>

namespace conpool::tools {

/// Throws std::invalid_argument("OPTION VALUE: WHY").
[[noreturn]] inline void bad(std::string_view option, std::string_view value, std::string_view why) {
  std::string what(option);
  if (!value.empty()) what.append(" ").append(value);
  throw std::invalid_argument(what + ": " + std::string(why));
}

/// `text` as a number from `low` to `high`; else `bad` says why.
template <class T>
T number(std::string_view option, std::string_view text, T low, T high) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) bad(option, text, "not a number");
  if (!(v >= low && v <= high)) {
    bad(option, text, "out of range " + std::to_string(low) + ".." + std::to_string(high));
  }
  return v;
}

}  // namespace conpool::tools
