// SPDX-License-Identifier: MIT
// A host's own epoll loop drives a shard through notify_fd() and poll().
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "support/support.hpp"

using namespace conpool;
using namespace std::chrono_literals;

TEST_CASE("embed: a plain epoll loop drives a shard's echo traffic to completion") {
  testing::for_each_ring_mode([](ring_mode m) {
    testing::fd_leak_check leaks;
    shard s({.mode = m});
    result<listener> l = listener::open(socket_address::loopback(0));
    REQUIRE(l.has_value());
    std::size_t echoed = 0;
    std::string reply;
    s.spawn([](listener& l, std::size_t& echoed) -> task<void> {
      echoed = co_await testing::echo_server(l, 1);
    }(*l, echoed));
    s.spawn([](socket_address to, std::string& reply) -> task<void> {
      // A timer, woken through the eventfd too; long enough that the host's first poll()
      // cannot finish the whole exchange by itself, even on a slow sanitizer build.
      REQUIRE(co_await sleep_for(50ms));
      result<flow> f = co_await connect(to, 1s);
      REQUIRE(f.has_value());
      for (int i = 0; i < 10; ++i) {
        REQUIRE(co_await f->write_all("ping"));
        char buf[4];
        REQUIRE(co_await f->read_exact(std::as_writable_bytes(std::span(buf))));
        reply.assign(buf, 4);
      }
    }(l->address(), reply));

    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{.events = EPOLLIN, .data = {.u64 = 1}};
    REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, s.notify_fd(), &ev) == 0);
    int wakeups = 0;
    s.poll();  // the host's first call starts the spawned tasks
    while (s.spawned() > 0) {
      epoll_event out[4];
      // The 5 s bound only turns a lost wake-up into a failure instead of a hang.
      const int n = ::epoll_wait(ep, out, 4, 5000);
      if (n < 0 && errno == EINTR) continue;
      REQUIRE_MESSAGE(n > 0, "shard work pending but its notify_fd never became readable: ",
                      std::strerror(errno));
      ++wakeups;
      s.poll();
    }
    ::close(ep);
    CHECK(reply == "ping");
    CHECK(echoed == 40);
    CHECK(wakeups > 0);
  });
}

namespace {
bool readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1;
}
}  // namespace

TEST_CASE("embed: notify_fd wakes the host for a new fd and for a task spawned from outside") {
  testing::for_each_ring_mode([](ring_mode m) {
    shard s({.mode = m});
    const int fd = s.notify_fd();
    CHECK(readable(fd));  // whatever completed before the fd existed is not lost
    s.poll();
    CHECK_FALSE(readable(fd));
    bool ran = false;
    s.spawn([](bool& ran) -> task<void> {
      ran = true;
      co_return;
    }(ran));
    CHECK(readable(fd));  // the host learns there is a task to start
    s.poll();
    CHECK(ran);
    CHECK(s.spawned() == 0);
  });
}
