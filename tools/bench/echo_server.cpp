// SPDX-License-Identifier: MIT
#include "echo_server.hpp"

#include <system_error>

#include <conpool/conpool.hpp>

namespace conpool::bench {
namespace {

task<void> serve(flow f, echo_server::counts& c) {
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    result<std::size_t> n = co_await f.read_some(buf);
    if (!n || *n == 0) break;
    if (!co_await f.write_all(std::span(buf.data(), *n))) break;
  }
  (void)co_await f.close();
  c.open_now.fetch_sub(1);
}

task<void> accept_loop(listener& l, scope& sc, echo_server::counts& c) {
  for (;;) {
    result<flow> f = co_await l.accept();
    if (!f) co_return;
    c.accepted.fetch_add(1);
    const int now = c.open_now.fetch_add(1) + 1;
    int peak = c.peak.load();
    while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
    }
    sc.spawn(serve(std::move(*f), c));
  }
}

}  // namespace

echo_server::echo_server(int listeners) {
  thread_ = std::thread([this, listeners] { run(listeners); });
  state_.wait(0);
  if (state_.load() == 2) {
    thread_.join();
    throw std::system_error(error_, std::system_category(), "echo server: listen on 127.0.0.1");
  }
}

void echo_server::run(int count) {
  shard s;
  std::vector<listener> listeners;
  for (int i = 0; i < count; ++i) {
    // A deep backlog: fresh-connection runs open hundreds of connections at once.
    result<listener> l = listener::open(socket_address::loopback(0), 4096);
    if (!l) {
      error_ = l.error().value();
      state_.store(2);
      state_.notify_one();
      return;
    }
    ports_.push_back(l->address().port());
    listeners.push_back(std::move(*l));
  }
  ring_fd_ = s.ring_fd();
  state_.store(1);
  state_.notify_one();
  s.run([](std::vector<listener>& ls, counts& c) -> task<void> {
    co_await scoped([&](scope& sc) -> task<void> {
      for (listener& l : ls) sc.spawn(accept_loop(l, sc, c));
      (void)co_await io::msg_receive();  // the stop: leaving the scope cancels every task
      sc.cancel();
    });
  }(listeners, counts_));
}

echo_server::~echo_server() {
  if (state_.load() != 1) return;
  {
    shard s;
    s.run([](int fd) -> task<void> { (void)co_await io::msg_send(fd, {}); }(ring_fd_));
  }
  thread_.join();
}

}  // namespace conpool::bench
