// SPDX-License-Identifier: MIT
#include "metrics_server.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace conpool::tools {

namespace {

// A connection has this long, in all, to send its request and take the answer: a client that
// trickles its bytes cannot hold the one serving thread.
constexpr auto per_connection = std::chrono::seconds(2);

[[noreturn]] void fail_at(const std::string& at, const char* what) {
  throw std::runtime_error("--metrics " + at + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

metrics_server::metrics_server(const std::string& at) {
  result<socket_address> a = socket_address::parse(at);
  if (!a) {
    throw std::invalid_argument("--metrics " + at +
                                ": not an address with a port (\"127.0.0.1:9464\", \"[::1]:9464\")");
  }
  listen_fd_ = ::socket(a->family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) fail_at(at, "socket");
  const int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  result<socket_address> bound = fail(std::errc::bad_file_descriptor);
  if (::bind(listen_fd_, a->data(), a->size()) == 0 && ::listen(listen_fd_, 64) == 0) {
    bound = socket_address::local_of(listen_fd_);
  }
  if (bound) stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (!bound || stop_fd_ < 0) {
    const int e = errno;
    ::close(listen_fd_);
    errno = e;
    fail_at(at, bound ? "eventfd" : "cannot listen");
  }
  address_ = *bound;
  try {
    thread_ = std::thread([this] { serve(); });
  } catch (...) {
    ::close(stop_fd_);
    ::close(listen_fd_);
    throw;
  }
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
  // The page must stay valid: one pool may go unnamed; several need names of their own.
  const bool named = !name.empty();
  for (const metrics_source& m : pools_) {
    if (m.source == &p) throw std::invalid_argument("metrics_server: the pool is published already");
    if (!named || m.name.empty()) {
      throw std::invalid_argument("metrics_server: several pools need a name each");
    }
    if (m.name == name) {
      throw std::invalid_argument("metrics_server: the pool name \"" + name + "\" is taken");
    }
  }
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

void metrics_server::add_section(std::function<void(std::ostream&)> write) {
  std::lock_guard lock(mutex_);
  sections_.push_back(std::move(write));
}

void metrics_server::clear_sections() {
  std::lock_guard lock(mutex_);
  sections_.clear();
}

std::string metrics_server::page() {
  std::ostringstream os;
  std::lock_guard lock(mutex_);  // held while the pools are read: withdraw waits for it
  if (pools_.size() == 1 && pools_[0].name.empty()) {
    write_prometheus(os, *pools_[0].source);
  } else if (!pools_.empty()) {
    write_prometheus(os, pools_);
  }
  for (const auto& write : sections_) write(os);
  return std::move(os).str();
}

bool metrics_server::wait_for(int fd, short events, std::chrono::steady_clock::time_point until) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno == EINTR) continue;
    return n > 0 && fds[1].revents == 0 && fds[0].revents != 0;
  }
}

void metrics_server::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      // Out of descriptors (the connection stays queued): pause rather than spin.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pollfd stop{stop_fd_, POLLIN, 0};
        if (::poll(&stop, 1, 100) > 0) return;
      }
      continue;
    }
    try {
      answer(fd);
    } catch (...) {
      // Nothing but memory can fail here: the connection is dropped, the server goes on.
    }
    ::close(fd);
  }
}

void metrics_server::answer(int fd) {
  const auto until = std::chrono::steady_clock::now() + per_connection;
  // The request head (a scraper's is a few hundred bytes; a body, if any, is not read).
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > 16384 || !wait_for(fd, POLLIN, until)) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    head.append(buf, static_cast<std::size_t>(n));
  }
  const std::string line = head.substr(0, head.find("\r\n"));
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
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
  std::string_view rest = response;
  while (!rest.empty()) {
    const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, until)) return;
    } else {
      return;
    }
  }
  std::lock_guard lock(mutex_);
  ++served_;
}

}  // namespace conpool::tools
