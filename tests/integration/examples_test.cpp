// SPDX-License-Identifier: MIT
// The example programs of tools/examples run as their users run them, against real nginx,
// redis-server and PostgreSQL started on ephemeral loopback ports, with each server's own
// counts compared with the example's stats line; their failures (refused, bad arguments,
// unknown role); and the PostgreSQL client side they use (tools/clients/postgres) against the
// same server. Skipped, with a message, where a server binary is absent.
#include <pwd.h>
#include <sys/un.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "../support/test_server.hpp"
#include "peer_process.hpp"
#include "postgres.hpp"
#include "process.hpp"

using namespace conpool;
using namespace conpool::clients;
using testing::fd_leak_check;
using testing::peer_process;
using bench::program_result;
using bench::run_program;

namespace {

// The example binary that meson passes in CONPOOL_EXAMPLE_<NAME>.
std::string example(const std::string& name) {
  std::string var = "CONPOOL_EXAMPLE_" + name;
  for (char& ch : var) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const char* path = std::getenv(var.c_str());
  REQUIRE_MESSAGE(path != nullptr, var, " names the example binary (meson test)");
  return path;
}

// The numbers of the example's last line: "stats 127.0.0.1:80 active=0 idle=1 created=34 ...".
std::map<std::string, long> stats_of(const program_result& r) {
  std::string_view out = r.out;
  while (out.ends_with('\n')) out.remove_suffix(1);
  const std::string_view line = out.substr(out.rfind('\n') + 1);  // npos + 1 == 0
  REQUIRE_MESSAGE(line.starts_with("stats "), "last line: ", line);
  std::map<std::string, long> numbers;
  std::istringstream words{std::string(line)};
  for (std::string w; words >> w;) {
    if (const std::size_t eq = w.find('='); eq != std::string::npos) {
      numbers[w.substr(0, eq)] = std::stol(w.substr(eq + 1));
    }
  }
  return numbers;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Sends `request` to 127.0.0.1:`port` on a plain blocking socket and reads until the server
// closes (the request asks it to): the test's own look at a server's counters.
std::string ask(std::uint16_t port, std::string_view request) {
  struct owned_fd {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ~owned_fd() { ::close(fd); }
  } s;
  const socket_address to = socket_address::loopback(port);
  REQUIRE(::connect(s.fd, to.data(), to.size()) == 0);
  REQUIRE(::send(s.fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::recv(s.fd, buf, sizeof buf, 0)) > 0;) {
    reply.append(buf, static_cast<std::size_t>(n));
  }
  return reply;
}

// A counter of redis's INFO output: "total_connections_received:12".
long info_number(const std::string& info, const std::string& name) {
  const std::size_t at = info.find(name + ":");
  REQUIRE_MESSAGE(at != std::string::npos, name, " in INFO");
  return std::stol(info.substr(at + name.size() + 1));
}

// Requests nginx has logged. Its single worker logs a request before it handles any later
// event, so asking for one more page first orders every earlier line before the count.
long logged_requests(const testing::nginx_server& server) {
  CHECK(contains(ask(server.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                 " 200 "));
  std::ifstream log(server.log());
  long lines = 0;
  for (std::string line; std::getline(log, line);) ++lines;
  return lines - 1;
}

// PostgreSQL's server programs, /usr/lib/postgresql/<newest version>/bin, or empty.
std::filesystem::path postgres_bin() {
  std::filesystem::path newest;
  std::error_code ignored;
  for (const auto& v : std::filesystem::directory_iterator("/usr/lib/postgresql", ignored)) {
    const std::filesystem::path bin = v.path() / "bin";
    if (!std::filesystem::exists(bin / "postgres") || !std::filesystem::exists(bin / "initdb")) {
      continue;
    }
    if (newest.empty() || std::stoi(v.path().filename().string()) >
                              std::stoi(newest.parent_path().filename().string())) {
      newest = bin;
    }
  }
  return newest;
}

// A datagram socket in the abstract namespace (no file, any user may send to it) on which a
// server started with NOTIFY_SOCKET=`name` says READY=1, as it would tell systemd.
struct ready_socket {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  std::string name =
      "@conpool-test-ready-" + std::to_string(::getpid()) + "-" + std::to_string(++made);
  static inline int made = 0;
  ready_socket() {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    name.copy(a.sun_path + 1, name.size() - 1, 1);  // '\0' first: abstract
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())) == 0);
  }
  ~ready_socket() { ::close(fd); }
  // Waits (10 s at most) for a message holding READY=1.
  void wait() {
    const timeval bound{.tv_sec = 10, .tv_usec = 0};
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound) == 0);
    char buf[512];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      REQUIRE_MESSAGE(n >= 0, "no READY=1 from the server within 10 s");
      if (contains(std::string_view(buf, static_cast<std::size_t>(n)), "READY=1")) return;
    }
  }
};

// A PostgreSQL cluster made for the test: trust authentication, except three roles that are
// asked for a password (cleartext, MD5, SCRAM). Run as the postgres user when the test runs as
// root (initdb and postgres refuse root); logs go to files in its directory.
struct postgres_server {
  testing::temp_dir dir;
  std::uint16_t port = testing::free_port();
  std::optional<peer_process> process;

  explicit postgres_server(const std::filesystem::path& bin) {
    const std::string data = (dir.path / "data").string();
    std::vector<std::string> initdb{
        (bin / "initdb").string(), "-N", "-D", data, "-A", "trust", "-U", "postgres"};
    std::optional<testing::run_as> as;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      REQUIRE_MESSAGE(pw != nullptr, "running as root needs a postgres user to run PostgreSQL");
      as = testing::run_as{pw->pw_uid, pw->pw_gid};
      REQUIRE(::chown(dir.path.c_str(), pw->pw_uid, pw->pw_gid) == 0);
      initdb.insert(initdb.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--"});
    }
    const program_result made = run_program(initdb);
    INFO(made.out, made.err);
    REQUIRE(made.status == 0);
    {
      std::ifstream in(dir.path / "data" / "pg_hba.conf");
      std::stringstream hba;
      hba << "host all needs_cleartext 127.0.0.1/32 password\n"
          << "host all needs_md5 127.0.0.1/32 md5\n"
          << "host all needs_scram 127.0.0.1/32 scram-sha-256\n"
          << in.rdbuf();
      in.close();
      std::ofstream(dir.path / "data" / "pg_hba.conf") << hba.str();  // keeps its owner
    }
    // postgres listens before it takes sessions ("the database system is starting up"), and
    // tells a NOTIFY_SOCKET when it does. env(1) execs it: the pid stays the server's.
    ready_socket ready;
    const std::string d = dir.path.string();
    const std::string port_text = std::to_string(port);
    // password_encryption=md5: roles unknown under "md5" in pg_hba.conf are asked for MD5.
    const std::vector<std::string> settings{"listen_addresses=127.0.0.1", "fsync=off",
                                            "shared_buffers=16MB",        "max_connections=50",
                                            "password_encryption=md5",    "logging_collector=on",
                                            "log_directory=" + d,         "log_min_messages=fatal"};
    std::vector<std::string> argv{"/usr/bin/env", "NOTIFY_SOCKET=" + ready.name};
    argv.push_back((bin / "postgres").string());
    for (const char* a : {"-D", data.c_str(), "-p", port_text.c_str(), "-k", d.c_str()}) {
      argv.push_back(a);
    }
    for (const std::string& setting : settings) {
      argv.push_back("-c");
      argv.push_back(setting);
    }
    process.emplace(std::move(argv), port, as);
    ready.wait();
  }
  endpoint where() const { return {"127.0.0.1", port}; }
  /// The same cluster through its Unix socket (`-k` puts it in the cluster's directory).
  endpoint unix_where() const {
    return endpoint::unix_socket((dir.path / (".s.PGSQL." + std::to_string(port))).string());
  }
};

// One cluster for the whole run (initdb takes a second), stopped at exit; nullptr when
// PostgreSQL is not installed.
postgres_server* shared_postgres() {
  static const std::filesystem::path bin = postgres_bin();
  if (bin.empty()) return nullptr;
  static const std::unique_ptr<postgres_server> server = std::make_unique<postgres_server>(bin);
  return server.get();
}

// A fresh pooled connection with a session as `user` started on it; closed when the start
// fails.
task<result<connection>> session(pool& p, const endpoint& ep, read_buffer& in, std::string user,
                                 std::string* why) {
  result<connection> c = co_await p.acquire(ep);
  if (!c) co_return fail(c.error());
  CHECK(c->use_count() == 1);  // a reused one has its session already
  result<void> started = co_await pg_startup(c->flow(), in, user, "postgres", why);
  if (!started) {
    p.close(std::move(*c));
    co_return fail(started.error());
  }
  co_return std::move(*c);
}

// The one value `sql` returns.
task<std::string> scalar(flow& f, read_buffer& in, std::string sql) {
  std::string why;
  result<pg_rows> r = co_await pg_simple_query(f, in, sql, &why);
  INFO(sql, ": ", why);
  REQUIRE(r.has_value());
  REQUIRE(r->rows.size() == 1);
  REQUIRE(r->rows[0].size() == 1);
  REQUIRE(r->rows[0][0].has_value());
  co_return *r->rows[0][0];
}

// A role that pg_hba.conf asks for a password, what the client's error says it was asked.
struct refusal {
  const char* user;
  pg_error error;
  const char* said;
};
constexpr refusal refusals[] = {
    {"needs_cleartext", pg_error::cleartext_password, "cleartext password"},
    {"needs_md5", pg_error::md5_password, "MD5 password"},
    {"needs_scram", pg_error::sasl, "SCRAM-SHA-256"},
};

}  // namespace

TEST_CASE("examples: http: 100 GETs through the pool, reused until nginx closes after 3") {
  const std::string nginx = testing::find_program("nginx");
  if (nginx.empty()) {
    MESSAGE("nginx is not installed: skipped");
    return;
  }
  fd_leak_check leaks;
  testing::nginx_server server(nginx, 3);
  const std::string target = "http://127.0.0.1:" + std::to_string(server.port) + "/";

  const program_result one = run_program({example("http"), target});
  INFO(one.out, one.err);
  REQUIRE(one.status == 0);
  CHECK(contains(one.out, "status 200: 100\n"));
  std::map<std::string, long> st = stats_of(one);
  CHECK(st["created"] == 34);  // nginx closes each connection after its third request
  CHECK(st["reused"] == 66);
  CHECK(st["closed"] == 33);  // the 34th served one request and is still open
  CHECK(st["idle"] == 1);
  CHECK(st["errors"] == 0);
  CHECK(logged_requests(server) == 100);  // nginx saw each request once

  // Four workers: never more than four connections open, each still serving three requests.
  const program_result four =
      run_program({example("http"), target, "--requests", "40", "--concurrency", "4"});
  INFO(four.out, four.err);
  REQUIRE(four.status == 0);
  st = stats_of(four);
  CHECK(st["created"] + st["reused"] == 40);
  CHECK(st["created"] >= 14);  // 40 / 3, rounded up
  CHECK(st["created"] <= 17);  // at most 4 open at the end, every other one served 3
  CHECK(st["errors"] == 0);
}

TEST_CASE("examples: redis: SET and 100 GETs over one connection, PING-checked on each reuse") {
  const std::string redis = testing::find_program("redis-server");
  if (redis.empty()) {
    MESSAGE("redis-server is not installed: skipped");
    return;
  }
  fd_leak_check leaks;
  testing::redis_server server(redis);
  const std::uint16_t port = server.port;
  const std::string target = "redis://127.0.0.1:" + std::to_string(port);
  const long connections_before =
      info_number(ask(port, "INFO stats\r\nQUIT\r\n"), "total_connections_received");

  const program_result one = run_program({example("redis"), target, "--requests", "100"});
  INFO(one.out, one.err);
  REQUIRE(one.status == 0);
  CHECK(contains(one.out, "100 GETs returned the value\n"));
  std::map<std::string, long> st = stats_of(one);
  CHECK(st["created"] == 1);
  CHECK(st["reused"] == 100);  // the SET opened it, every GET reused it
  CHECK(st["errors"] == 0);

  // The server's view: one connection from the example (and this one), one SET, 100 GETs, and
  // a PING health check before each reuse.
  const std::string info = ask(port, "INFO stats\r\nINFO commandstats\r\nQUIT\r\n");
  CHECK(info_number(info, "total_connections_received") == connections_before + 2);
  CHECK(contains(info, "cmdstat_set:calls=1,"));
  CHECK(contains(info, "cmdstat_get:calls=100,"));
  CHECK(contains(info, "cmdstat_ping:calls=100,"));

  const program_result ten =
      run_program({example("redis"), target, "--requests", "200", "--concurrency", "10"});
  INFO(ten.out, ten.err);
  REQUIRE(ten.status == 0);
  st = stats_of(ten);
  CHECK(st["created"] >= 1);
  CHECK(st["created"] <= 10);
  CHECK(st["created"] + st["reused"] == 201);
  CHECK(st["errors"] == 0);
}

TEST_CASE("examples: postgres: 100 concurrent SELECT 1 over at most 20 connections") {
  postgres_server* server = shared_postgres();
  if (server == nullptr) {
    MESSAGE("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): skipped");
    return;
  }
  fd_leak_check leaks;
  const std::string target = "postgres://127.0.0.1:" + std::to_string(server->port);

  const program_result r = run_program({example("postgres"), target});
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "100 queries returned 1\n"));
  std::map<std::string, long> st = stats_of(r);
  CHECK(st["created"] >= 1);
  CHECK(st["created"] <= 20);  // the pool's limit; the other queries waited for a connection
  CHECK(st["created"] + st["reused"] == 100);
  CHECK(st["errors"] == 0);

  // An unknown role: the server's own words, naming the target.
  const program_result nobody = run_program(
      {example("postgres"), target, "--user", "nobody", "--requests", "5", "--concurrency", "1"});
  INFO(nobody.out, nobody.err);
  CHECK(nobody.status == 1);
  CHECK(contains(nobody.err, target + ": startup: "));
  CHECK(contains(nobody.err, "FATAL 28000: role \"nobody\" does not exist"));
}

TEST_CASE("examples: a refused connection exits 1 naming the target; bad arguments exit 2") {
  for (const char* name : {"http", "redis", "postgres"}) {
    SUBCASE(name) {
      fd_leak_check leaks;
      testing::refusing_port closed;
      const std::string target = std::string(name) +
                                 "://127.0.0.1:" + std::to_string(closed.address.port()) +
                                 (name == std::string("http") ? "/" : "");
      const program_result refused = run_program({example(name), target, "--requests", "3"});
      INFO(refused.out, refused.err);
      CHECK(refused.status == 1);
      CHECK(contains(refused.err, target + ": "));
      CHECK(contains(refused.err, "Connection refused"));
      CHECK(!contains(refused.err, "Sanitizer"));  // ASan's exit status is 1 too
      std::map<std::string, long> st = stats_of(refused);
      CHECK(st["created"] == 0);
      CHECK(st["errors"] >= 1);

      for (const std::vector<std::string>& args :
           std::vector<std::vector<std::string>>{{"127.0.0.1:80"},
                                                 {"ftp://127.0.0.1:21"},
                                                 {target, "--requests", "0"},
                                                 {target, "--bogus"},
                                                 {}}) {
        std::vector<std::string> argv{example(name)};
        argv.insert(argv.end(), args.begin(), args.end());
        const program_result bad = run_program(argv);
        INFO(bad.err);
        CHECK(bad.status == 2);
        CHECK(contains(bad.err, "usage: conpool-example-" + std::string(name)));
        CHECK(bad.out.empty());
      }
    }
  }
}

TEST_CASE("postgres client: start-up, rows and NULLs, errors, COPY, refused authentication") {
  postgres_server* server = shared_postgres();
  if (server == nullptr) {
    MESSAGE("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): skipped");
    return;
  }
  testing::for_each_ring_mode([&](ring_mode m) {
    fd_leak_check leaks;
    shard s({.mode = m});
    s.run([](endpoint ep, std::string role) -> task<void> {
      pool p;
      read_buffer in;
      std::string why;
      result<connection> c = co_await session(p, ep, in, "postgres", &why);
      INFO(why);
      REQUIRE(c.has_value());

      // Text values, NULL apart from the empty string, column names, the command tag.
      result<pg_rows> r = co_await pg_simple_query(
          c->flow(), in, "SELECT 1 AS one, NULL::text AS nothing, '' AS empty, 'a''b' AS q");
      REQUIRE(r.has_value());
      CHECK(r->columns == std::vector<std::string>{"one", "nothing", "empty", "q"});
      REQUIRE(r->rows.size() == 1);
      CHECK(r->rows[0] == std::vector<std::optional<std::string>>{"1", std::nullopt, "", "a'b"});
      CHECK(r->command_tag == "SELECT 1");

      // Several statements: the rows of all, the last tag.
      r = co_await pg_simple_query(c->flow(), in,
                                   "CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1), (2); "
                                   "SELECT x FROM t ORDER BY x");
      REQUIRE(r.has_value());
      CHECK(r->rows == std::vector<std::vector<std::optional<std::string>>>{{"1"}, {"2"}});
      CHECK(r->command_tag == "SELECT 2");

      r = co_await pg_simple_query(c->flow(), in, "");  // EmptyQueryResponse
      REQUIRE(r.has_value());
      CHECK(r->rows.empty());
      CHECK(r->command_tag.empty());

      // A server error, then the same session goes on: the reply was read to ReadyForQuery.
      r = co_await pg_simple_query(c->flow(), in, "SELECT * FROM no_such_table", &why);
      REQUIRE(!r.has_value());
      CHECK(r.error() == pg_error::server_error);
      CHECK(why == "ERROR 42P01: relation \"no_such_table\" does not exist");
      CHECK(co_await scalar(c->flow(), in, "SELECT 2") == "2");

      // COPY either way is refused, and the session stays usable.
      r = co_await pg_simple_query(c->flow(), in, "COPY t FROM STDIN");
      REQUIRE(!r.has_value());
      CHECK(r.error() == pg_error::copy_unsupported);
      r = co_await pg_simple_query(c->flow(), in, "COPY t TO STDOUT");
      REQUIRE(!r.has_value());
      CHECK(r.error() == pg_error::copy_unsupported);
      CHECK(co_await scalar(c->flow(), in, "SELECT count(*) FROM t") == "2");

      const std::string nul("SELECT 1\0", 9);
      r = co_await pg_simple_query(c->flow(), in, nul);
      CHECK(r.error() == std::errc::invalid_argument);

      // The server counts three sessions of a role while three leases hold them.
      const std::string create_role = "CREATE ROLE " + role + " LOGIN; SELECT 'ok'";
      CHECK(co_await scalar(c->flow(), in, create_role) == "ok");
      read_buffer in2;
      read_buffer in3;
      read_buffer in4;
      result<connection> c2 = co_await session(p, ep, in2, role, &why);
      result<connection> c3 = co_await session(p, ep, in3, role, &why);
      result<connection> c4 = co_await session(p, ep, in4, role, &why);
      REQUIRE(c2.has_value());
      REQUIRE(c3.has_value());
      REQUIRE(c4.has_value());
      const std::string count =
          "SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role + "'";
      CHECK(co_await scalar(c2->flow(), in2, count) == "3");
      co_await pg_terminate(c4->flow());
      p.close(std::move(*c4));
      p.release(std::move(*c3));
      p.release(std::move(*c2));
      p.release(std::move(*c));
      p.close_idle_connections(ep);  // the rest starts sessions on fresh connections

      // What the server asked for, in the error's message; the server's words for the rest.
      for (const refusal& no : refusals) {
        read_buffer fresh;
        result<connection> denied = co_await session(p, ep, fresh, no.user, &why);
        REQUIRE(!denied.has_value());
        CHECK(denied.error() == no.error);
        CHECK(contains(denied.error().message(), no.said));
        CHECK(why.empty());
      }
      read_buffer fresh;
      result<connection> unknown = co_await session(p, ep, fresh, "nobody", &why);
      REQUIRE(!unknown.has_value());
      CHECK(unknown.error() == pg_error::server_error);
      CHECK(why == "FATAL 28000: role \"nobody\" does not exist");

      const endpoint_stats st = p.stats(ep);
      CHECK(st.total_created == 8);  // c, c2, c3, c4, and 4 refused
      co_await p.close_pool();
      testing::check_stats_add_up(p);
    }(server->where(), std::string("counter_") + testing::name(m)));
  });
}

TEST_CASE("postgres client: over the server's Unix socket, sessions pooled like TCP") {
  postgres_server* server = shared_postgres();
  if (server == nullptr) {
    MESSAGE("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): skipped");
    return;
  }
  fd_leak_check leaks;
  shard s;
  s.run([](endpoint ep) -> task<void> {
    REQUIRE(ep.is_unix());
    pool p;
    read_buffer in;
    std::string why;
    result<connection> c = co_await session(p, ep, in, "postgres", &why);
    INFO(why);
    REQUIRE(c.has_value());
    // The server's own word that this session came over a Unix socket: no client address.
    CHECK(co_await scalar(c->flow(), in, "SELECT coalesce(inet_client_addr()::text, 'unix')") ==
          "unix");
    p.release(std::move(*c));
    result<connection> again = co_await p.acquire(ep);
    REQUIRE(again.has_value());
    CHECK(again->reused());
    CHECK(co_await scalar(again->flow(), in, "SELECT 41 + 1") == "42");
    p.release(std::move(*again));
    CHECK(p.stats(ep).total_created == 1);
    co_await p.close_pool();
  }(server->unix_where()));
}
