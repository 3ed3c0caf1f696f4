// SPDX-License-Identifier: MIT
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <conpool/listener.hpp>

namespace conpool {

result<listener> listener::open(const socket_address& at, int backlog, bool reuse_port) {
  const int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(errno_error(-errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(errno_error(-err));
  }
  if (::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(errno_error(-err));
  }
  result<socket_address> bound = socket_address::local_of(fd);
  if (!bound) {
    ::close(fd);
    return fail(bound.error());
  }
  return listener(fd, *bound);
}

listener::listener(listener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(other.address_) {}

listener& listener::operator=(listener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    address_ = other.address_;
  }
  return *this;
}

listener::~listener() {
  if (fd_ >= 0) ::close(fd_);
}

task<result<flow>> listener::accept() {
  result<int> fd = co_await io::accept(fd_);
  if (!fd) co_return fail(fd.error());
  co_return flow(*fd);
}

}  // namespace conpool
