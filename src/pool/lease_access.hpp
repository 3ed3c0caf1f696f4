// SPDX-License-Identifier: MIT
#pragma once
// The pool's way into a lease (`connection` names this its friend).

#include <utility>

#include <conpool/connection.hpp>

namespace conpool::detail {

struct lease_access {
  static connection make(slot* s) noexcept { return connection(s); }
  static slot* take(connection& c) noexcept { return std::exchange(c.slot_, nullptr); }
  static slot* peek(const connection& c) noexcept { return c.slot_; }
};

}  // namespace conpool::detail
