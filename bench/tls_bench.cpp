// SPDX-License-Identifier: MIT
// TLS costs, each iteration one request (a line written, its reversed echo read) against
// `openssl s_server -rev` on loopback (TLS 1.3, ECDSA P-256): a full handshake per request, a
// resumed one per request (the pool with max_connection_uses = 1 offers the endpoint's
// session), and the pool reusing one connection. The certificates are made with the openssl
// CLI in a temporary directory. s_server serves one connection at a time, so these run one
// request at a time.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <conpool/conpool.hpp>

extern char** environ;

using namespace conpool;
using namespace std::chrono_literals;

namespace {

// A CA, a server certificate for localhost, and s_server answering with them; gone at exit.
struct tls_server {
  std::filesystem::path dir;
  pid_t pid = -1;
  std::uint16_t port = 0;
  bool ok = false;

  tls_server() {
    // mkdtemp's template: six X's it replaces.
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "conpool-tls-bench-").string() + std::string(6, 'X');
    if (::mkdtemp(tmpl.data()) == nullptr) return;
    dir = tmpl;
    const std::string d = dir.string();
    const std::string make =
        "cd '" + d + "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout s.key "
        "-out s.csr -subj /CN=localhost 2>/dev/null && "
        "printf 'subjectAltName=DNS:localhost\\n' > ext && openssl x509 -req -in s.csr -CA "
        "ca.pem -CAkey ca.key -CAcreateserial -out s.pem -days 2 -extfile ext 2>/dev/null";
    if (std::system(make.c_str()) != 0) return;
    for (std::uint16_t p = 42000; p < 42100 && !ok; ++p) {
      port = p;
      const std::string accept = "127.0.0.1:" + std::to_string(p);
      std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" >/dev/null 2>&1", "sh",
                                       "openssl", "s_server", "-quiet", "-rev", "-accept", accept,
                                       "-cert", d + "/s.pem", "-key", d + "/s.key"};
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, args.data(), environ) != 0) return;
      for (int i = 0; i < 500 && !ok; ++i) {  // until it listens (or exits: port taken)
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const socket_address to = socket_address::loopback(p);
        ok = ::connect(fd, to.data(), to.size()) == 0;
        ::close(fd);
        int status = 0;
        if (!ok && ::waitpid(pid, &status, WNOHANG) != 0) break;
        if (!ok) ::usleep(2000);
      }
      if (!ok) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
      }
    }
  }
  ~tls_server() {
    if (ok) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

tls_server& server() {
  static tls_server s;
  return s;
}

task<bool> request(flow& f) {
  if (!co_await f.write_all("hello tls\n")) co_return false;
  char back[10];
  co_return (co_await f.read_exact(std::as_writable_bytes(std::span(back)))).has_value();
}

// A full handshake per request: connect, handshake, request, close_notify and close.
void BM_tls_full_handshake(benchmark::State& state) {
  tls_server& srv = server();
  if (!srv.ok) return state.SkipWithError("openssl s_server could not be started");
  auto ctx = tls_context::make({.ca_file = (srv.dir / "ca.pem").string()});
  shard s;
  std::uint64_t failures = 0;
  s.run([](benchmark::State& state, tls_context& ctx, std::uint16_t port,
           std::uint64_t& failures) -> task<void> {
    for (auto _ : state) {
      result<flow> f = co_await connect(socket_address::loopback(port), 5s);
      if (!f || !co_await f->start_tls(ctx, "localhost") || !co_await request(*f)) ++failures;
      if (f) (void)co_await f->close();
    }
  }(state, *ctx, srv.port, failures));
  state.counters["failures"] = static_cast<double>(failures);
}

// Through the pool: `uses` requests a connection (1: a new, resumed connection each time).
void BM_tls_pool(benchmark::State& state, std::optional<int> uses) {
  tls_server& srv = server();
  if (!srv.ok) return state.SkipWithError("openssl s_server could not be started");
  auto ctx = tls_context::make({.ca_file = (srv.dir / "ca.pem").string()});
  const endpoint ep{"127.0.0.1", srv.port, tls_config{ctx, "localhost"}};
  shard s;
  std::uint64_t failures = 0;
  std::uint64_t resumed = 0;
  s.run([](benchmark::State& state, const endpoint& ep, std::optional<int> uses,
           std::uint64_t& failures, std::uint64_t& resumed) -> task<void> {
    config c;
    c.max_connections_per_endpoint = 1;
    c.max_connection_uses = uses;
    pool p(c);
    for (auto _ : state) {
      result<connection> conn = co_await p.acquire(ep);
      if (!conn) {
        ++failures;
        continue;
      }
      if (conn->flow().tls_resumed()) ++resumed;
      if (co_await request(conn->flow())) {
        p.release(std::move(*conn));
      } else {
        ++failures;
        p.close(std::move(*conn));
      }
    }
    co_await p.close_pool();
  }(state, ep, uses, failures, resumed));
  state.counters["failures"] = static_cast<double>(failures);
  state.counters["resumed"] = static_cast<double>(resumed) / static_cast<double>(state.iterations());
}

void BM_tls_resumed_handshake(benchmark::State& state) { BM_tls_pool(state, 1); }
void BM_tls_pooled(benchmark::State& state) { BM_tls_pool(state, std::nullopt); }

}  // namespace

BENCHMARK(BM_tls_full_handshake)->UseRealTime();
BENCHMARK(BM_tls_resumed_handshake)->UseRealTime();
BENCHMARK(BM_tls_pooled)->UseRealTime();

BENCHMARK_MAIN();
