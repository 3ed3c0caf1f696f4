// SPDX-License-Identifier: MIT
#pragma once
// A tiny DNS server on UDP 127.0.0.1:53 (inside a network namespace of the test's own), on a
// thread of its own: it answers A queries for the names it was given (127.0.0.1, or the
// addresses `set_a` gave the name, changeable while it runs), answers AAAA with ::1 for the
// "dual" ones and with no address for the others, says NXDOMAIN to other names, and never
// answers the names it was told to ignore (a silent server, as a DNS server that is down or
// firewalled). It counts the queries it sees per name and type.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace conpool::testing {

class dns_server {
 public:
  dns_server(std::set<std::string> known, std::set<std::string> silent,
             std::set<std::string> dual = {})
      : known_(std::move(known)), silent_(std::move(silent)), dual_(std::move(dual)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("dns_server: cannot bind 127.0.0.1:53");
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
  }
  ~dns_server() {
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
    ::close(fd_);
    ::close(stop_fd_);
  }
  dns_server(const dns_server&) = delete;
  dns_server& operator=(const dns_server&) = delete;

  /// From now on, `name`'s A answer is `ipv4` (dotted quads, one record each).
  void set_a(const std::string& name, const std::vector<std::string>& ipv4) {
    std::vector<in_addr_t> addresses;
    for (const std::string& a : ipv4) addresses.push_back(::inet_addr(a.c_str()));
    std::lock_guard lock(mutex_);
    a_records_[name] = std::move(addresses);
  }

  /// Queries seen for `name` of type `type` (1: A, 28: AAAA).
  int queries(const std::string& name, int type = 1) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find({name, type});
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  void run() {
    unsigned char buf[512];
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      ::poll(fds, 2, -1);
      if (fds[1].revents != 0) return;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 17) continue;
      // The question: labels from byte 12, then QTYPE and QCLASS.
      std::string name;
      std::size_t i = 12;
      while (i < static_cast<std::size_t>(n) && buf[i] != 0) {
        const std::size_t label = buf[i];
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<const char*>(buf + i + 1), label);
        i += label + 1;
      }
      if (i + 5 > static_cast<std::size_t>(n)) continue;
      const int type = buf[i + 1] << 8 | buf[i + 2];
      const std::size_t question_end = i + 5;
      {
        std::lock_guard lock(mutex_);
        ++counts_[{name, type}];
      }
      if (silent_.contains(name)) continue;
      unsigned char out[512];
      std::memcpy(out, buf, question_end);
      out[2] = 0x81;  // a response; recursion desired, as asked
      out[3] = 0x80;  // recursion available, NOERROR
      out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;  // no answers yet
      std::size_t m = question_end;
      std::vector<in_addr_t> set;
      {
        std::lock_guard lock(mutex_);
        if (auto it = a_records_.find(name); it != a_records_.end()) set = it->second;
      }
      if (!set.empty()) {
        if (type == 1) {
          out[7] = static_cast<unsigned char>(set.size());
          for (const in_addr_t a : set) {
            unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0, 0, 0, 0};
            std::memcpy(rr + 12, &a, 4);
            std::memcpy(out + m, rr, sizeof rr);
            m += sizeof rr;
          }
        }
      } else if (!known_.contains(name) && !dual_.contains(name)) {
        out[3] |= 3;  // NXDOMAIN
      } else if (type == 28 && dual_.contains(name)) {
        out[7] = 1;  // AAAA ::1
        const unsigned char rr[] = {0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16,
                                    0,    0,    0, 0,  0, 0, 0, 0, 0, 0,  0, 0,
                                    0,    0,    0, 1};
        std::memcpy(out + m, rr, sizeof rr);
        m += sizeof rr;
      } else if (type == 1) {
        out[7] = 1;  // one answer: a pointer to the question's name, A, IN, TTL 60, 127.0.0.1
        const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
        std::memcpy(out + m, rr, sizeof rr);
        m += sizeof rr;
      }
      (void)::sendto(fd_, out, m, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  std::set<std::string> known_;
  std::set<std::string> silent_;
  std::set<std::string> dual_;
  int fd_ = -1;
  int stop_fd_ = -1;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int> counts_;
  std::map<std::string, std::vector<in_addr_t>> a_records_;
  std::thread thread_;
};

}  // namespace conpool::testing
