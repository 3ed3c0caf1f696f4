// SPDX-License-Identifier: MIT
#pragma once
// Real proxies started by a test on loopback: tinyproxy (HTTP CONNECT) and dante-server
// (SOCKS5, with or without username/password). Each in its own temporary directory, on an
// ephemeral port, stopped when the test ends.

#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "peer_process.hpp"
#include "process.hpp"

namespace conpool::testing {

/// tinyproxy allowing CONNECT from 127.0.0.1 to any port.
struct tinyproxy_server {
  temp_dir dir;
  std::uint16_t port = free_port();
  std::optional<peer_process> process;

  explicit tinyproxy_server(const std::string& tinyproxy) {
    // No ConnectPort line: CONNECT to every port is allowed.
    std::ofstream(dir.path / "tinyproxy.conf")
        << "Port " << port << "\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
        << "LogFile \"" << (dir.path / "tinyproxy.log").string() << "\"\nLogLevel Info\n";
    process.emplace(std::vector<std::string>{tinyproxy, "-d", "-c",
                                             (dir.path / "tinyproxy.conf").string()},
                    port);
  }
  [[nodiscard]] proxy_config proxy() const {
    return proxy_config::parse("http://127.0.0.1:" + std::to_string(port));
  }

  /// Started, or null (with a message: the test is skipped) where tinyproxy is absent.
  static std::unique_ptr<tinyproxy_server> start() {
    const std::string tinyproxy = find_program("tinyproxy");
    if (tinyproxy.empty()) {
      MESSAGE("tinyproxy is not installed: skipped");
      return nullptr;
    }
    return std::make_unique<tinyproxy_server>(tinyproxy);
  }
};

/// danted, SOCKS5 CONNECT from 127.0.0.0/8 anywhere. With a `user`, only username/password
/// (RFC 1929) is accepted: dante checks it against the system's password database, so the
/// server runs in a mount namespace of its own where /etc/passwd and /etc/shadow are copies
/// holding the test's user (the machine's files are never touched).
struct dante_server {
  struct login {
    std::string user;
    std::string password;
  };

  temp_dir dir;
  std::uint16_t port = free_port();
  std::optional<login> user;
  std::optional<peer_process> process;

  dante_server(const std::string& danted, std::optional<login> who) : user(std::move(who)) {
    const std::string conf = (dir.path / "danted.conf").string();
    std::ofstream(conf) << "logoutput: " << (dir.path / "danted.log").string() << "\n"
                        << "internal: 127.0.0.1 port = " << port << "\nexternal: 127.0.0.1\n"
                        << "socksmethod: " << (user ? "username" : "none") << "\n"
                        << "clientmethod: none\nuser.privileged: root\n"
                        << "user.unprivileged: nobody\n"
                        << "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
                        << "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n";
    if (!user) {
      process.emplace(std::vector<std::string>{danted, "-f", conf}, port);
      return;
    }
    const std::string passwd = (dir.path / "passwd").string();
    const std::string shadow = (dir.path / "shadow").string();
    std::filesystem::copy_file("/etc/passwd", passwd);
    std::filesystem::copy_file("/etc/shadow", shadow);
    const bench::program_result hash = bench::run_program(
        {find_program("openssl"), "passwd", "-6", "-salt", "conpool", user->password});
    REQUIRE_MESSAGE(hash.status == 0, hash.err);
    std::ofstream(passwd, std::ios::app)
        << user->user << ":x:4242:4242::/nonexistent:/usr/sbin/nologin\n";
    std::ofstream(shadow, std::ios::app)
        << user->user << ":" << hash.out.substr(0, hash.out.find('\n')) << ":19000:0:99999:7:::\n";
    process.emplace(
        std::vector<std::string>{find_program("unshare"), "--mount", "/bin/sh", "-c",
                                 "mount --bind " + passwd + " /etc/passwd && mount --bind " +
                                     shadow + " /etc/shadow && exec " + danted + " -f " + conf},
        port);
  }

  [[nodiscard]] proxy_config proxy(bool with_login = true) const {
    proxy_config p;
    p.kind = proxy_config::protocol::socks5;
    p.host = "127.0.0.1";
    p.port = port;
    if (user && with_login) {
      p.username = user->user;
      p.password = user->password;
    }
    return p;
  }

  /// Started, or null (with a message: the test is skipped) where danted is absent, or, with a
  /// user, where a mount namespace cannot be made (not root).
  static std::unique_ptr<dante_server> start(std::optional<login> user = {}) {
    const std::string danted = find_program("danted");
    if (danted.empty()) {
      MESSAGE("dante-server is not installed: skipped");
      return nullptr;
    }
    if (user && (::geteuid() != 0 || find_program("unshare").empty())) {
      MESSAGE("dante with a login needs root and unshare (a mount namespace): skipped");
      return nullptr;
    }
    return std::make_unique<dante_server>(danted, std::move(user));
  }
};

}  // namespace conpool::testing
