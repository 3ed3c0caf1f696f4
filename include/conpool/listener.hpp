// SPDX-License-Identifier: MIT
#pragma once
/// `listener`: a listening TCP socket whose accepts go through the shard's ring. Used by the
/// embedded servers of tests and conpool-bench.
///
/// Example:
///   result<listener> l = listener::open(socket_address::loopback(0));
///   result<flow> peer = co_await l->accept();

#include <conpool/address.hpp>
#include <conpool/error.hpp>
#include <conpool/flow.hpp>
#include <conpool/task.hpp>

namespace conpool {

class listener {
 public:
  /// Binds (SO_REUSEADDR) and listens with `backlog`. Port 0 picks an ephemeral port. With
  /// `reuse_port` (SO_REUSEPORT), several listeners (one per shard) share the address and the
  /// kernel spreads new connections over them. Errors: the system's (address_in_use, ...).
  static result<listener> open(const socket_address& at, int backlog = 128,
                               bool reuse_port = false);

  listener(listener&& other) noexcept;
  listener& operator=(listener&& other) noexcept;
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener();

  /// The bound address (with the real port when opened on port 0).
  [[nodiscard]] const socket_address& address() const noexcept { return address_; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }

  /// The next connection. Errors: the system's, operation_canceled.
  task<result<flow>> accept();

 private:
  listener(int fd, socket_address a) noexcept : fd_(fd), address_(a) {}
  int fd_ = -1;
  socket_address address_;
};

}  // namespace conpool
