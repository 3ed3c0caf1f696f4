// SPDX-License-Identifier: MIT
#pragma once
// An echo server on a thread of its own (a plain poll() loop, no io_uring) that misbehaves on
// purpose: it can close (FIN) or reset (RST) each connection right after each reply, or reset it
// 0-10 ms after the reply, or close a connection unanswered when a second request comes on it
// (a server closing an idle connection just as it is reused, made exact), or close each one as
// soon as it is accepted (a balancer with no healthy backend), and another thread can have it close every connection it holds at a
// moment of its choosing (the call returns once they are closed).
//
// Right after a reply is two syscalls (send, close): a server thread preempted between them
// closes at any later moment. `fin_in_reply` makes the moment exact: the FIN travels in the
// reply's own segment (TCP_CORK, send, shutdown(SHUT_WR)), so no client can read the reply
// without the FIN being in its socket too; in rst mode the RST follows.

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace conpool::testing {

class rude_server {
 public:
  enum class after_reply { keep, fin, rst, rst_later, close_on_reuse, close_at_accept };

  explicit rude_server(after_reply mode = after_reply::keep, bool fin_in_reply = false)
      : mode_(mode), fin_in_reply_(fin_in_reply) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listen_fd_, 1024) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("rude_server: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
  }
  ~rude_server() {
    stop_.store(true);
    poke();
    thread_.join();
    for (const conn& c : conns_) ::close(c.fd);
    ::close(listen_fd_);
    ::close(wake_fd_);
  }
  rude_server(const rude_server&) = delete;
  rude_server& operator=(const rude_server&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] int accepted() const noexcept { return accepted_.load(); }

  /// Closes (FIN) or, with `reset`, resets every connection the server holds; returns once
  /// they are closed. Any thread.
  void close_all(bool reset = false) {
    const int done = closes_done_.load();
    close_request_.store(reset ? 2 : 1);
    poke();
    while (closes_done_.load() == done) std::this_thread::yield();
  }

 private:
  struct conn {
    int fd;
    std::chrono::steady_clock::time_point close_at;  // max(): none planned
    int answered = 0;
  };

  void poke() const noexcept {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }

  static void shut(int fd, bool reset) noexcept {
    if (reset) {
      const linger l{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
  }

  void run() {
    using clock = std::chrono::steady_clock;
    std::mt19937 random(42);
    std::uniform_int_distribution<int> later_us(0, 10'000);
    std::vector<pollfd> fds;
    std::vector<char> buf(64 * 1024);
    while (!stop_.load()) {
      fds.assign({{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}});
      auto next = clock::time_point::max();
      for (const conn& c : conns_) {
        fds.push_back({c.fd, POLLIN, 0});
        next = std::min(next, c.close_at);
      }
      int timeout = -1;
      if (next != clock::time_point::max()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - clock::now());
        timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
      }
      ::poll(fds.data(), fds.size(), timeout);
      if (fds[1].revents != 0) {
        std::uint64_t n;
        (void)!::read(wake_fd_, &n, sizeof n);
        if (const int req = close_request_.exchange(0); req != 0) {
          for (const conn& c : conns_) shut(c.fd, req == 2);
          conns_.clear();
          fds.resize(2);
          closes_done_.fetch_add(1);
        }
      }
      const auto now = clock::now();
      std::vector<conn> kept;
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        conn c = conns_[i];
        if (c.close_at <= now) {
          shut(c.fd, true);
          continue;
        }
        if (i + 2 < fds.size() && fds[i + 2].revents != 0) {
          const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
          if (n <= 0 || (mode_ == after_reply::close_on_reuse && c.answered > 0)) {
            ::close(c.fd);
            continue;
          }
          ++c.answered;
          const bool closes = mode_ == after_reply::fin || mode_ == after_reply::rst;
          if (closes && fin_in_reply_) {
            const int on = 1;
            ::setsockopt(c.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
          }
          (void)!::send(c.fd, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
          if (closes) {
            if (fin_in_reply_) ::shutdown(c.fd, SHUT_WR);
            shut(c.fd, mode_ == after_reply::rst);
            continue;
          }
          if (mode_ == after_reply::rst_later) {
            c.close_at = clock::now() + std::chrono::microseconds(later_us(random));
          }
        }
        kept.push_back(c);
      }
      conns_.swap(kept);
      if (fds[0].revents != 0) {
        for (;;) {
          const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (fd < 0) break;
          accepted_.fetch_add(1);
          if (mode_ == after_reply::close_at_accept) {  // a server with nothing behind it
            ::close(fd);
            continue;
          }
          conns_.push_back({fd, clock::time_point::max()});
        }
      }
    }
  }

  after_reply mode_;
  bool fin_in_reply_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<conn> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> close_request_{0};
  std::atomic<int> closes_done_{0};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace conpool::testing
