// SPDX-License-Identifier: MIT
// conpool-proxy as its users run it, between real clients (curl, wrk, raw sockets) and a real
// origin (nginx: static files, WebDAV PUT for request bodies, gzip for chunked responses,
// limit_rate for slow ones, stub_status for its connection counts), each started by the test on
// ephemeral ports.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <conpool/conpool.hpp>

#include "http_get.hpp"
#include "peer_process.hpp"
#include "process.hpp"
#include "self_signed.hpp"

using namespace conpool;
using namespace std::chrono_literals;
using bench::run_program;
using testing::find_program;
using testing::free_port;

namespace {

std::string proxy_binary() {
  const char* path = std::getenv("CONPOOL_PROXY");
  REQUIRE_MESSAGE(path != nullptr, "CONPOOL_PROXY names the conpool-proxy binary (meson test)");
  return path;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string random_bytes(std::size_t n) {
  std::mt19937_64 gen(42);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

// nginx as the origin: "/" answers a line, /files/ serves and takes (PUT) files, /gz/ serves
// them gzipped on the fly (a chunked response; to HTTP/1.0, one ended by the close), /slow/ at 20 KB/s, and /status its counts.
struct origin {
  testing::temp_dir dir;
  std::uint16_t port = free_port();
  std::string nginx;
  std::optional<testing::peer_process> process;
  std::optional<std::pair<std::string, std::string>> tls;

  explicit origin(std::string nginx_path, std::optional<std::pair<std::string, std::string>> cert = {})
      : nginx(std::move(nginx_path)), tls(std::move(cert)) {
    const std::string d = dir.path.string();
    std::filesystem::create_directories(dir.path / "www/files");
    std::filesystem::create_directories(dir.path / "www/gz");
    std::filesystem::create_directories(dir.path / "www/slow");
    std::filesystem::create_directories(dir.path / "tmp");
    const std::string listen =
        tls ? " ssl; ssl_certificate " + tls->first + "; ssl_certificate_key " + tls->second : "";
    std::ofstream(dir.path / "nginx.conf")
        << "daemon off; master_process off; worker_processes 1;\n"
        << "pid " << d << "/nginx.pid; error_log " << d << "/error.log;\n"
        << "events { worker_connections 4096; }\n"
        << "http { access_log off; client_body_temp_path " << d << "/tmp; proxy_temp_path " << d
        << "; fastcgi_temp_path " << d << "; uwsgi_temp_path " << d << "; scgi_temp_path " << d
        << ";\n  keepalive_requests 100000; keepalive_timeout 60s; root " << d << "/www;\n"
        << "  server { listen 127.0.0.1:" << port << listen << ";\n"
        << "    location = /status { stub_status; }\n"
        << "    location /files/ { dav_methods PUT DELETE; client_max_body_size 16m; }\n"
        << "    location /gz/ { gzip on; gzip_types *; gzip_min_length 0; gzip_proxied any;\n"
        << "      gzip_http_version 1.0; }\n"
        << "    location /slow/ { limit_rate 20k; limit_rate_after 0; }\n"
        << "    location = / { return 200 \"hello from nginx\\n\"; } } }\n";
    start();
  }
  void start() {
    process.emplace(std::vector<std::string>{nginx, "-e", dir.path.string() + "/error.log", "-p",
                                             dir.path.string(), "-c", dir.path.string() + "/nginx.conf"},
                    port);
  }
  void stop() { process.reset(); }
  void put(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir.path / "www" / name, std::ios::binary) << bytes;
  }
  [[nodiscard]] std::string file(const std::string& name) const { return slurp(dir.path / "www" / name); }
  // stub_status's "accepts" (connections accepted since the start; this query's own included).
  [[nodiscard]] long accepted() const {
    const std::string s = testing::http_get(port, "/status");
    const std::size_t at = s.find("requests\n");
    if (at == std::string::npos) return -1;
    return std::stol(s.substr(at + 9));
  }
};

// conpool-proxy in front of `upstream`.
struct proxy {
  std::uint16_t port = free_port();
  std::uint16_t metrics_port = free_port();
  std::optional<testing::peer_process> process;
  proxy(const std::string& upstream, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {proxy_binary(), "--listen", "127.0.0.1:" + std::to_string(port),
                                     "--upstream", upstream, "--metrics",
                                     "127.0.0.1:" + std::to_string(metrics_port), "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process.emplace(argv, port);
  }
  [[nodiscard]] std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
  [[nodiscard]] std::string metrics() const { return testing::http_get(metrics_port, "/metrics"); }
  // Waits (bounded) until the proxy holds no client connection: a client's socket is closed
  // through the ring a moment after the client goes.
  void clients_gone() const {
    for (int i = 0; i < 300 && metric_of("conpool_proxy_client_connections") != 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
  }
  [[nodiscard]] double metric_of(const std::string& series) const;
  // The proxy's open descriptors.
  [[nodiscard]] long fds() const {
    long n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(process->pid()) + "/fd")) {
      ++n;
    }
    return n;
  }
};

// A metric's value in an exposition ("name{labels} value"), or -1.
double metric(const std::string& page, const std::string& series) {
  const std::size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 2));
}

double proxy::metric_of(const std::string& series) const { return metric(metrics(), series); }

// The response to raw bytes sent on a connection of its own (read until the proxy closes, or
// `wait_close` false: until the first response's head and a short while).
std::string raw(std::uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const socket_address to = socket_address::loopback(port);
  std::string out;
  if (::connect(fd, to.data(), to.size()) == 0) {
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

struct tools_present {
  std::string nginx = find_program("nginx");
  std::string curl = find_program("curl");
  std::string wrk = find_program("wrk");
  bool ok() const {
    if (nginx.empty() || curl.empty() || wrk.empty()) {
      MESSAGE("nginx, curl or wrk is not installed: skipped");
      return false;
    }
    return true;
  }
};

}  // namespace

TEST_CASE("conpool-proxy: curl's GET, HEAD, POST, chunked both ways, 1 MiB bodies and Connection: close arrive whole") {
  tools_present t;
  if (!t.ok()) return;
  origin o(t.nginx);
  proxy px("http://127.0.0.1:" + std::to_string(o.port));
  testing::temp_dir dir;

  // GET: the origin's answer, with the proxy's Via.
  bench::program_result r = run_program({t.curl, "-s", "-i", px.url()});
  REQUIRE(r.status == 0);
  CHECK(r.out.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(r.out.find("Via: 1.1 conpool-proxy\r\n") != std::string::npos);
  CHECK(r.out.ends_with("\r\n\r\nhello from nginx\n"));
  // HEAD: the head alone, its Content-Length kept.
  r = run_program({t.curl, "-s", "-I", px.url()});
  CHECK(r.out.find("Content-Length: 17\r\n") != std::string::npos);
  CHECK(r.out.ends_with("\r\n\r\n"));

  // PUT of 1 MiB (Content-Length), then GET it back: byte for byte.
  const std::string mib = random_bytes(1 << 20);
  std::ofstream(dir.path / "mib.bin", std::ios::binary) << mib;
  r = run_program({t.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T",
                   (dir.path / "mib.bin").string(), px.url("/files/mib.bin")});
  CHECK(r.out == "201");
  CHECK(o.file("files/mib.bin") == mib);
  r = run_program({t.curl, "-s", "-o", (dir.path / "back.bin").string(), px.url("/files/mib.bin")});
  CHECK(slurp(dir.path / "back.bin") == mib);
  // POST of a form body (curl's -d), answered by the origin.
  r = run_program({t.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-d",
                   "a=1&b=2", px.url("/files/form.txt")});
  CHECK(r.out == "201");
  CHECK(o.file("files/form.txt") == "a=1&b=2");
  // A chunked request body (1 MiB in curl's chunks).
  r = run_program({t.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                   "Transfer-Encoding: chunked", "-T", (dir.path / "mib.bin").string(),
                   px.url("/files/chunked.bin")});
  CHECK(r.out == "201");
  CHECK(o.file("files/chunked.bin") == mib);
  // A chunked response: gzip on the fly, decoded by curl.
  const std::string text = std::string(300'000, 'z') + "end";
  o.put("gz/text.txt", text);
  r = run_program({t.curl, "-s", "--compressed", "-D", (dir.path / "head.txt").string(), "-o",
                   (dir.path / "text.txt").string(), px.url("/gz/text.txt")});
  CHECK(slurp(dir.path / "head.txt").find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(slurp(dir.path / "text.txt") == text);
  // The same to an HTTP/1.0 client: never chunked (it could not decode it); the body ends
  // with the connection, and arrives whole.
  r = run_program({t.curl, "-s", "--http1.0", "--compressed", "-D", (dir.path / "head10.txt").string(),
                   "-o", (dir.path / "text10.txt").string(), px.url("/gz/text.txt")});
  CHECK(slurp(dir.path / "head10.txt").find("Transfer-Encoding") == std::string::npos);
  CHECK(slurp(dir.path / "head10.txt").find("Content-Encoding: gzip") != std::string::npos);
  CHECK(slurp(dir.path / "text10.txt") == text);
  // Connection: close from the client: answered, then closed.
  r = run_program({t.curl, "-s", "-i", "-H", "Connection: close", px.url()});
  CHECK(r.out.find("Connection: close\r\n") != std::string::npos);
  CHECK(r.out.ends_with("hello from nginx\n"));
  // Several requests on one client connection (keep-alive): curl reuses it.
  r = run_program({t.curl, "-s", "-w", "%{num_connects}\\n", px.url(), px.url(), px.url()});
  CHECK(r.out == "hello from nginx\n1\nhello from nginx\n0\nhello from nginx\n0\n");
}

TEST_CASE("conpool-proxy: wrk through it with 0 errors; the origin never sees more than --upstream-connections") {
  tools_present t;
  if (!t.ok()) return;
  origin o(t.nginx);
  proxy px("http://127.0.0.1:" + std::to_string(o.port), {"--upstream-connections", "8", "--shards", "2"});
  const long before = o.accepted();
  const bench::program_result r = run_program({t.wrk, "-t1", "-c50", "-d2s", px.url()});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("Non-2xx") == std::string::npos);
  CHECK(r.out.find("Socket errors") == std::string::npos);
  const long after = o.accepted();
  // Its own status queries aside (two), the origin accepted at most 8 connections.
  CHECK(after - before - 1 <= 8);
  const std::string page = px.metrics();
  CHECK(metric(page, "conpool_connections_created_total{host=\"127.0.0.1\",port=\"" +
                         std::to_string(o.port) + "\",transport=\"tcp\"}") <= 8);
  CHECK(metric(page, "conpool_proxy_requests_total{code=\"200\"}") > 1000);
}

TEST_CASE("conpool-proxy: bad requests get their status: 400 malformed, 431 head too large, 413 body too large") {
  tools_present t;
  if (!t.ok()) return;
  origin o(t.nginx);
  proxy px("http://127.0.0.1:" + std::to_string(o.port), {"--max-header-bytes", "4096", "--max-body-bytes", "1000"});
  CHECK(raw(px.port, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(raw(px.port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));  // no Host
  CHECK(raw(px.port, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
            .starts_with("HTTP/1.1 400"));  // smuggling shape
  CHECK(raw(px.port, "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n").starts_with("HTTP/1.1 400"));  // bare LF
  CHECK(raw(px.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n")
            .starts_with("HTTP/1.1 431"));
  CHECK(raw(px.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
            .starts_with("HTTP/1.1 413"));
  std::string chunked = "PUT /files/big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(512, 'x') + "\r\n";
  chunked += "0\r\n\r\n";
  CHECK(raw(px.port, chunked).starts_with("HTTP/1.1 413"));
  // A good request on the same kind of connection still works.
  CHECK(raw(px.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").ends_with("hello from nginx\n"));
}

TEST_CASE("conpool-proxy: the origin restarted under load: only 502s during the outage, full recovery, no descriptor leaked") {
  tools_present t;
  if (!t.ok()) return;
  origin o(t.nginx);
  proxy px("http://127.0.0.1:" + std::to_string(o.port), {"--upstream-connections", "8"});
  // Warm: the pool holds its connections, the proxy its listener and sockets.
  REQUIRE(run_program({t.wrk, "-t1", "-c20", "-d1s", px.url()}).status == 0);
  px.clients_gone();
  const long fds_before = px.fds();
  bench::program_result load;
  std::thread wrk([&] { load = run_program({t.wrk, "-t1", "-c20", "-d3s", px.url()}); });
  std::this_thread::sleep_for(800ms);  // under load (a time by nature: wrk runs by the clock)
  o.stop();
  std::this_thread::sleep_for(600ms);
  o.start();
  wrk.join();
  INFO(load.out);
  CHECK(load.out.find("Non-2xx or 3xx responses") != std::string::npos);  // the outage was seen
  const std::string page = px.metrics();
  // Only 200s and 502s: no other status, no hang.
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("conpool_proxy_requests_total{")) continue;
    CAPTURE(line);
    CHECK((line.find("code=\"200\"") != std::string::npos || line.find("code=\"502\"") != std::string::npos));
  }
  CHECK(metric(page, "conpool_proxy_requests_total{code=\"502\"}") > 0);
  // Recovered: every request now goes through.
  const bench::program_result after = run_program({t.wrk, "-t1", "-c20", "-d1s", px.url()});
  CHECK(after.out.find("Non-2xx") == std::string::npos);
  CHECK(after.out.find("Socket errors") == std::string::npos);
  // The same descriptors as before (the pool's connections opened again, within its limit).
  px.clients_gone();
  CHECK(px.fds() <= fds_before);
}

TEST_CASE("conpool-proxy: an https:// upstream is verified: with the test CA it serves, without it 502") {
  tools_present t;
  const std::string openssl = find_program("openssl");
  if (!t.ok() || openssl.empty()) return;
  testing::self_signed cert(openssl);
  origin o(t.nginx, std::pair{cert.cert, cert.key});
  const std::string upstream = "https://localhost:" + std::to_string(o.port);
  {
    proxy px(upstream, {"--ca-file", cert.cert});
    const bench::program_result r = run_program({t.curl, "-s", px.url()});
    CHECK(r.out == "hello from nginx\n");
  }
  proxy unverified(upstream);  // the system's CAs do not know the test's certificate
  const bench::program_result r = run_program({t.curl, "-s", "-i", unverified.url()});
  CHECK(r.out.starts_with("HTTP/1.1 502"));
  CHECK(r.out.find("TLS") != std::string::npos);
}

TEST_CASE("conpool-proxy: SIGTERM drains: a request in flight completes, then the proxy exits 0") {
  tools_present t;
  if (!t.ok()) return;
  origin o(t.nginx);
  const std::string slow = random_bytes(30'000);  // 1.5 s at 20 KB/s
  o.put("slow/file.bin", slow);
  proxy px("http://127.0.0.1:" + std::to_string(o.port));
  testing::temp_dir dir;
  bench::program_result r;
  std::thread client([&] {
    r = run_program({t.curl, "-s", "-o", (dir.path / "slow.bin").string(), "-w", "%{http_code}",
                     px.url("/slow/file.bin")});
  });
  // Once the response has begun (the proxy counts the request only at its end: wait for the
  // origin's side instead).
  for (int i = 0; i < 200 && metric(px.metrics(), "conpool_connections{host=\"127.0.0.1\",port=\"" +
                                                   std::to_string(o.port) +
                                                   "\",transport=\"tcp\",state=\"active\"}") != 1;
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const auto stopping = std::chrono::steady_clock::now();
  ::kill(px.process->pid(), SIGTERM);
  // New connections are refused once the proxy stops accepting.
  std::this_thread::sleep_for(200ms);
  CHECK(testing::http_get(px.port, "/").empty());
  const int status = px.process->wait();
  client.join();
  CHECK(status == 0);
  CHECK(r.out == "200");
  CHECK(slurp(dir.path / "slow.bin") == slow);
  CHECK(std::chrono::steady_clock::now() - stopping < 5s);
}

TEST_CASE("conpool-proxy: bad options exit 2 naming the option and value, before any I/O") {
  const struct {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--upstream", "http://127.0.0.1:1"}, "--listen: required"},
      {{"--listen", "127.0.0.1:1"}, "--upstream: at least one is required"},
      {{"--listen", "nope", "--upstream", "http://127.0.0.1:1"}, "--listen nope: not an IP address"},
      {{"--listen", "127.0.0.1:1", "--upstream", "ftp://h:21"}, "ftp://h:21"},
      {{"--listen", "127.0.0.1:1", "--upstream", "tcp://h:21"}, "scheme must be http:// or https://"},
      {{"--listen", "127.0.0.1:1", "--upstream", "http://h:1/x"}, "a path is not supported"},
      {{"--listen", "127.0.0.1:1", "--upstream", "http://h:1", "--shards", "65"}, "--shards 65: out of range"},
      {{"--listen", "127.0.0.1:1", "--upstream", "http://h:1", "--response-timeout", "0"},
       "--response-timeout 0: must be more than 0 seconds"},
      {{"--listen", "127.0.0.1:1", "--upstream", "http://h:1", "--balance", "random"},
       "--balance random: expected round-robin or least-loaded"},
      {{"--listen", "127.0.0.1:1", "--upstream", "http://h:1", "--metrics", "x"}, "--metrics x:"},
      {{"--frobnicate"}, "--frobnicate: unknown option"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {proxy_binary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const bench::program_result r = run_program(argv);
    INFO(c.message, " / ", r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
  const bench::program_result help = run_program({proxy_binary(), "--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("--upstream-connections N") != std::string::npos);
}

TEST_CASE("conpool-io-floor: answers every request on a kept connection in each mode; bad arguments exit 2") {
  tools_present t;
  if (!t.ok()) return;
  const char* path = std::getenv("CONPOOL_IO_FLOOR");
  REQUIRE_MESSAGE(path != nullptr, "CONPOOL_IO_FLOOR names the conpool-io-floor binary (meson test)");
  for (const char* mode : {"single", "multishot", "fixed"}) {
    CAPTURE(mode);
    const std::uint16_t port = free_port();
    testing::peer_process floor({path, std::to_string(port), mode}, port);
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
    // Three requests on one connection (curl keeps it), each answered in full.
    const bench::program_result r = run_program({t.curl, "-s", url, url, url});
    CHECK(r.status == 0);
    CHECK(r.out == "hello from nginx\nhello from nginx\nhello from nginx\n");
    // wrk's 50 connections at once for a second: every response whole (0 errors).
    const bench::program_result w = run_program({t.wrk, "-t1", "-c50", "-d1s", url});
    CHECK(w.status == 0);
    CHECK(w.out.find("Socket errors") == std::string::npos);
    CHECK(w.out.find("Non-2xx") == std::string::npos);
  }
  const bench::program_result bad_port = run_program({path, "0"});
  CHECK(bad_port.status == 2);
  CHECK(bad_port.err.find("PORT: '0' is not a port") != std::string::npos);
  const bench::program_result bad_mode = run_program({path, "1", "turbo"});
  CHECK(bad_mode.status == 2);
  CHECK(bad_mode.err.find("mode: 'turbo'") != std::string::npos);
}
