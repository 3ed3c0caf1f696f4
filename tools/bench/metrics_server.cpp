// SPDX-License-Identifier: MIT
#include "metrics_server.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace conpool::bench {

namespace {

constexpr int io_timeout_ms = 2000;  // a client that stalls mid-request is dropped

[[noreturn]] void fail_at(const std::string& at, const char* what) {
  throw std::runtime_error("--metrics " + at + ": " + what + ": " + std::strerror(errno));
}

// Sends all of `s` (bounded by the timeout on each wait).
bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, io_timeout_ms) <= 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

metrics_server::metrics_server(const std::string& at) {
  result<socket_address> a = socket_address::parse(at);
  if (!a) {
    throw std::invalid_argument("--metrics " + at +
                                ": not an address with a port (\"127.0.0.1:9464\", \"[::1]:9464\")");
  }
  listen_fd_ = ::socket(a->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail_at(at, "socket");
  const int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(listen_fd_, a->data(), a->size()) != 0 || ::listen(listen_fd_, 64) != 0) {
    const int e = errno;
    ::close(listen_fd_);
    errno = e;
    fail_at(at, "cannot listen");
  }
  address_ = *socket_address::local_of(listen_fd_);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    ::close(listen_fd_);
    fail_at(at, "eventfd");
  }
  thread_ = std::thread([this] { serve(); });
}

metrics_server::~metrics_server() {
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
  ::close(listen_fd_);
}

void metrics_server::publish(const pool& p, std::string name) {
  std::lock_guard lock(mutex_);
  pools_.push_back({&p, std::move(name)});
}

void metrics_server::withdraw(const pool& p) {
  std::lock_guard lock(mutex_);
  std::erase_if(pools_, [&p](const metrics_source& m) { return m.source == &p; });
}

std::uint64_t metrics_server::served() const {
  std::lock_guard lock(mutex_);
  return served_;
}

std::string metrics_server::page() {
  std::ostringstream os;
  std::lock_guard lock(mutex_);  // held while the pools are read: withdraw waits for it
  if (pools_.size() == 1 && pools_[0].name.empty()) {
    write_prometheus(os, *pools_[0].source);
  } else if (!pools_.empty()) {
    write_prometheus(os, pools_);
  }
  return std::move(os).str();
}

void metrics_server::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    answer(fd);
    ::close(fd);
  }
}

void metrics_server::answer(int fd) {
  // The request head (a scraper's is a few hundred bytes; the body, if any, is not read).
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, io_timeout_ms) <= 0) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    head.append(buf, static_cast<std::size_t>(n));
  }
  const std::size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  const std::string method = line.substr(0, sp1);
  std::string target = sp1 == std::string::npos ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  std::string status = "200 OK";
  std::string type(prometheus_content_type);
  std::string body;
  if (method != "GET" && method != "HEAD") {
    status = "405 Method Not Allowed";
    type = "text/plain";
    body = "GET /metrics\n";
  } else if (target != "/metrics") {
    status = "404 Not Found";
    type = "text/plain";
    body = "the metrics are at /metrics\n";
  } else {
    body = page();
  }
  std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") response += body;
  (void)send_all(fd, response);
  std::lock_guard lock(mutex_);
  ++served_;
}

}  // namespace conpool::bench
