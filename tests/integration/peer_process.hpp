// SPDX-License-Identifier: MIT
#pragma once
// A real server (nginx, redis-server, postgres) started by a test: its own temporary directory,
// an ephemeral loopback port, stopped (SIGTERM, reaped) when the test ends.

#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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

/// A user and group to run a server as (postgres refuses to run as root).
struct run_as {
  uid_t uid = 0;
  gid_t gid = 0;
};

class peer_process {
 public:
  /// Starts `argv` (argv[0] a full path), as `user` when given, and waits until
  /// 127.0.0.1:`port` accepts.
  peer_process(std::vector<std::string> argv, std::uint16_t port, std::optional<run_as> user = {})
      : port_(port) {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (user) {
      pid_ = ::fork();  // posix_spawn cannot change the user
      REQUIRE(pid_ >= 0);
      if (pid_ == 0) {  // only async-signal-safe calls until exec
        if (::setgroups(0, nullptr) == 0 && ::setgid(user->gid) == 0 && ::setuid(user->uid) == 0) {
          ::execve(args[0], args.data(), environ);
        }
        ::_exit(127);
      }
    } else {
      REQUIRE(::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) == 0);
    }
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
    if (pid_ > 0) (void)stop(SIGTERM);
  }
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  endpoint where() const { return {"127.0.0.1", port_}; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// Sends `sig` and waits for the process to end: its exit status (128 + signal if killed).
  int stop(int sig) {
    ::kill(pid_, sig);
    return wait();
  }
  /// Waits for the process to end by itself: its exit status (128 + signal if killed).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

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

/// nginx on an ephemeral port with one worker, answering "hello from nginx\n" at every path and
/// closing a connection after `keepalive_requests`; its access log is `log()`, a line a request:
/// "GET / HTTP/1.1 200 reused=r" (`r`: a resumed TLS session, `.`: a full handshake). Start it only
/// where `find_program("nginx")` found it.
struct nginx_server {
  temp_dir dir;
  std::uint16_t port = free_port();
  std::optional<peer_process> process;
  /// With `tls` (certificate and key files), the server speaks HTTPS.
  nginx_server(const std::string& nginx, int keepalive_requests,
               std::optional<std::pair<std::string, std::string>> tls = {}) {
    const std::string d = dir.path.string();
    const std::string listen = tls ? " ssl; ssl_certificate " + tls->first +
                                         "; ssl_certificate_key " + tls->second
                                   : "";
    std::ofstream(dir.path / "nginx.conf")
        << "daemon off; master_process off; worker_processes 1;\n"
        << "pid " << d << "/nginx.pid; error_log " << d << "/error.log;\n"
        << "events { worker_connections 1024; }\n"
        << "http { log_format conpool '$request $status reused=$ssl_session_reused';\n"
        << "  access_log " << d << "/access.log conpool; client_body_temp_path " << d
        << "; proxy_temp_path " << d << "; fastcgi_temp_path " << d << "; uwsgi_temp_path " << d
        << "; scgi_temp_path " << d << ";\n  keepalive_requests " << keepalive_requests
        << "; keepalive_timeout 60s;\n"
        << "  server { listen 127.0.0.1:" << port << listen
        << "; location / { return 200 \"hello from nginx\\n\"; } } }\n";
    process.emplace(
        std::vector<std::string>{nginx, "-e", d + "/error.log", "-p", d, "-c", d + "/nginx.conf"},
        port);
  }
  [[nodiscard]] std::filesystem::path log() const { return dir.path / "access.log"; }
  [[nodiscard]] endpoint where() const { return {"127.0.0.1", port}; }
};

/// redis-server on an ephemeral port and a Unix socket in its directory, nothing persisted.
/// Start it only where `find_program("redis-server")` found it.
struct redis_server {
  temp_dir dir;
  std::uint16_t port = free_port();
  peer_process process;
  explicit redis_server(const std::string& redis)
      : process({redis, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", dir.path.string(), "--logfile",
                 (dir.path / "redis.log").string(), "--unixsocket",
                 (dir.path / "redis.sock").string(), "--unixsocketperm", "700"},
                port) {
    // redis-server listens on TCP first, then makes its Unix socket (bind, then listen: the
    // file appears before it accepts): a connect that succeeds is the sign (bounded wait).
    const std::string path = (dir.path / "redis.sock").string();
    for (int i = 0; i < 5000 && !accepts_on(path); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  static bool accepts_on(const std::string& path) {
    const socket_address a = *socket_address::unix_socket(path);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool up = ::connect(fd, a.data(), a.size()) == 0;
    ::close(fd);
    return up;
  }
  [[nodiscard]] endpoint where() const { return {"127.0.0.1", port}; }
  /// The same server through its Unix socket (accepting: the constructor waited for it).
  [[nodiscard]] endpoint unix_where() const {
    return endpoint::unix_socket((dir.path / "redis.sock").string());
  }
};

}  // namespace conpool::testing
