// SPDX-License-Identifier: MIT
// conpool-proxy: an HTTP/1.1 reverse proxy on conpool's shards and pool. See --help and
// README.md ("conpool-proxy").
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <conpool/conpool.hpp>

#include "metrics_server.hpp"
#include "options.hpp"
#include "server.hpp"

using namespace conpool;
using namespace conpool::proxy;

namespace {

config pool_settings(const options& o) {
  config c;
  c.max_connections_per_endpoint = o.upstream_connections;
  c.connect_timeout = std::chrono::duration<double>(o.connect_timeout);
  c.acquire_timeout = std::chrono::duration<double>(o.queue_timeout + o.connect_timeout);
  // An upstream that refuses fails its requests at once (502), as HAProxy and Envoy do, rather
  // than holding them through the pool's connect backoff steps.
  c.connect_backoff.reset();
  c.validate();
  return c;
}

std::vector<upstream> upstreams_of(const options& o) {
  std::shared_ptr<tls_context> tls;
  std::vector<upstream> out;
  for (const clients::url& u : o.upstreams) {
    upstream up{u, endpoint(u.host, u.port), u.authority()};
    if (u.scheme == "https") {
      // Verified by default, as everywhere in conpool; --insecure is the operator's choice.
      if (!tls) tls = tls_context::make({.ca_file = o.ca_file, .insecure_skip_verify = o.insecure});
      up.ep.tls = tls_config{tls, std::nullopt};
    }
    if (const std::string why = up.ep.problem(); !why.empty()) {
      throw std::invalid_argument("--upstream " + u.to_string() + ": " + why);
    }
    out.push_back(std::move(up));
  }
  return out;
}

// SIGTERM and SIGINT, waited for on a thread of their own: the first stops every shard
// (through a socket each shard reads with its ring), a second ends the process at once.
class signal_watch {
 public:
  explicit signal_watch(unsigned shards) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any other thread: they inherit it
    for (unsigned i = 0; i < shards; ++i) {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::runtime_error("socketpair failed");
      }
      pairs_.push_back({fds[0], fds[1]});
    }
    thread_ = std::thread([this] { watch(); });
  }
  ~signal_watch() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    for (auto [a, b] : pairs_) {
      ::close(a);
      ::close(b);
    }
  }
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  /// Shard `i` reads this socket: a byte means stop.
  [[nodiscard]] int stop_fd(unsigned i) const { return pairs_[i].first; }

 private:
  void watch() {
    bool stopping = false;
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (done_.load()) return;
      if (stopping) ::_exit(128 + sig);  // a second signal: no more waiting
      stopping = true;
      for (auto [a, b] : pairs_) (void)!::write(b, "x", 1);
    }
  }
  sigset_t set_;
  std::vector<std::pair<int, int>> pairs_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int main_checked(int argc, char** argv) {
  const std::optional<options> parsed = parse_options(argc, argv);
  if (!parsed) return 0;
  const options& o = *parsed;
  signal_watch signals(o.shards);
  runtime rt({.shards = o.shards, .pin = true});
  pool upstream_pool(rt, pool_settings(o));
  shared_state shared{o, upstream_pool, upstreams_of(o), proxy_stats(o.shards)};
  std::vector<std::unique_ptr<shard_server>> servers;
  for (unsigned i = 0; i < o.shards; ++i) servers.push_back(std::make_unique<shard_server>(shared, i));

  std::unique_ptr<tools::metrics_server> metrics;
  if (o.metrics) {
    metrics = std::make_unique<tools::metrics_server>(*o.metrics);
    metrics->publish(upstream_pool);
    metrics->add_section([&shared](std::ostream& os) { shared.stats.write(os); });
  }
  if (!o.quiet) {
    std::cerr << "conpool-proxy: listening on " << o.listen.to_string() << ", " << o.shards
              << (o.shards == 1 ? " shard" : " shards") << ", " << o.upstreams.size()
              << (o.upstreams.size() == 1 ? " upstream" : " upstreams");
    if (metrics) std::cerr << ", metrics at http://" << metrics->address().to_string() << "/metrics";
    std::cerr << std::endl;
  }
  rt.run([&](unsigned i) -> task<void> {
    shard_server& me = *servers[i];
    co_await scoped([&](scope& sc) -> task<void> {
      sc.spawn([](shard_server& s, int fd) -> task<void> {
        std::byte b[1];
        if (co_await io::recv(fd, b)) s.stop();
      }(me, signals.stop_fd(i)));
      co_await me.run();
    });
  });
  if (metrics) {
    metrics->withdraw(upstream_pool);
    metrics->clear_sections();
  }
  if (!o.quiet) std::cerr << "conpool-proxy: stopped" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_checked(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "conpool-proxy: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "conpool-proxy: " << e.what() << "\n";
    return 1;
  }
}
