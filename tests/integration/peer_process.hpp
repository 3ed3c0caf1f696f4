// SPDX-License-Identifier: MIT
#pragma once
// A real server (nginx, redis-server) started by a test: its own temporary directory, an
// ephemeral loopback port, stopped (SIGTERM, reaped) when the test ends.

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../support/support.hpp"

extern char** environ;

namespace conpool::testing {

/// The full path of `name` on PATH (or in /usr/sbin), or empty.
inline std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    const std::string candidate = path.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

/// A port on 127.0.0.1 that was free a moment ago.
inline std::uint16_t free_port() {
  refusing_port p;
  return p.address.port();
}

class peer_process {
 public:
  /// Starts `argv` (argv[0] a full path) and waits until 127.0.0.1:`port` accepts.
  peer_process(std::vector<std::string> argv, std::uint16_t port) : port_(port) {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    REQUIRE(::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) == 0);
    // No event says "listening" for every server: poll with a bounded connect loop.
    const socket_address to = socket_address::loopback(port_);
    for (int i = 0; i < 2500; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool up = ::connect(fd, to.data(), to.size()) == 0;
      ::close(fd);
      if (up) return;
      int status = 0;
      REQUIRE_MESSAGE(::waitpid(pid_, &status, WNOHANG) == 0, argv[0], " exited at start");
      ::usleep(2000);
    }
    FAIL(argv[0], " did not listen on port ", port_, " within 5 s");
  }
  ~peer_process() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  endpoint where() const { return {"127.0.0.1", port_}; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_;
};

/// A fresh temporary directory, removed with its contents at the end.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = "/tmp/conpool-test-" + std::string(6, 'X');  // mkdtemp's template
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

}  // namespace conpool::testing
