// SPDX-License-Identifier: MIT
#pragma once
// A network namespace of the test's own, for faults made for real: unshare(CLONE_NEWNET) moves
// the calling thread (and the threads and processes it starts from then on) into a fresh
// namespace whose loopback it brings up; nftables rules there (`nft`, run as a child process,
// which inherits the namespace) drop packets without touching anything outside the test.
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and the nft tool; `why_not()` says which is missing.

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace conpool::testing {

class private_net {
 public:
  private_net() {
    if (::unshare(CLONE_NEWNET) != 0) {
      why_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (needs root)";
      return;
    }
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    const bool up = fd >= 0 && ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
                    (ifr.ifr_flags |= IFF_UP, ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
    if (fd >= 0) ::close(fd);
    if (!up) {
      why_ = std::string("bringing up lo: ") + std::strerror(errno);
      return;
    }
    if (std::system("nft list ruleset >/dev/null 2>&1") != 0) {
      why_ = "nft (Debian package nftables) is missing or cannot run";
    }
  }

  /// Empty when the namespace and nft are usable; else what is missing.
  [[nodiscard]] const std::string& why_not() const noexcept { return why_; }

  /// Drops every TCP packet to and from `port` on loopback, both ways: the peer goes silent
  /// (no FIN, no RST), as a host that powered off or a firewall that forgot the flow.
  bool blackhole(std::uint16_t port) const {
    const std::string rules =
        "nft -f - <<'EOF'\n"
        "table inet conpool_test {\n"
        "  chain out {\n"
        "    type filter hook output priority 0;\n"
        "    tcp dport " + std::to_string(port) + " drop\n"
        "    tcp sport " + std::to_string(port) + " drop\n"
        "  }\n"
        "}\n"
        "EOF\n";
    return std::system(rules.c_str()) == 0;
  }

  /// Lets every packet through again.
  bool restore() const { return std::system("nft delete table inet conpool_test") == 0; }

 private:
  std::string why_;
};

}  // namespace conpool::testing
