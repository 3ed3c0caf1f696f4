// SPDX-License-Identifier: MIT
#include "resolver.hpp"

#include <arpa/inet.h>
#include <liburing.h>
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "shard_core.hpp"
#include "slab.hpp"

namespace conpool::detail {
namespace {

// One lookup in flight. Heap-allocated: a waiter cancelled meanwhile leaves it to the shard,
// which frees it when the helper's answer arrives.
struct lookup : completion, cancel_hook {
  std::string host;
  int ring_fd = -1;               // the asking shard's ring
  std::atomic<bool> done{false};  // the helper's writes below happen before this is set
  int status = 0;                 // a getaddrinfo EAI_* code, 0 on success
  std::vector<socket_address> addresses;
  // Shard side only. Two owners once submitted: the waiting coroutine and the answer's
  // completion; the last to let go frees it (a cancelled waiter may resume after the answer).
  std::coroutine_handle<> waiter;
  cancel_node* node = nullptr;
  bool abandoned = false;
  int owners = 1;

  void unref() noexcept {
    if (--owners == 0) delete this;
  }
  static void on_answer(completion* c, unsigned, int, unsigned) noexcept {
    auto* l = static_cast<lookup*>(c);
    (void)l->done.load(std::memory_order_acquire);
    if (!l->abandoned) {
      if (l->node != nullptr) l->node->unpark(l);
      shard_core::current().schedule(l->waiter);
    }
    l->unref();
  }
  static void on_cancel(cancel_hook* h) noexcept {
    auto* l = static_cast<lookup*>(h);
    l->abandoned = true;
    l->node->unpark(l);
    shard_core::current().schedule(l->waiter);
  }
  lookup() : completion{&lookup::on_answer}, cancel_hook{&lookup::on_cancel} {}
};

// The helper thread, shared by all shards; started on first use, joined at exit.
class lookup_service {
 public:
  static lookup_service& instance() {
    static lookup_service s;
    return s;
  }
  void submit(lookup* l) {
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
      queue_.push_back(l);
    }
    wake_.notify_one();
  }
  ~lookup_service() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // The helper's own small ring posts answers (one descriptor, held for the process's life,
  // like the helper thread itself).
  void run() {
    io_uring ring{};
    if (io_uring_queue_init(4, &ring, 0) != 0) std::abort();  // shards would wait forever
    for (;;) {
      lookup* l = nullptr;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;
        l = queue_.front();
        queue_.pop_front();
      }
      answer(*l);
      // Everything the helper needs of `l` is read before `done` publishes it: once the answer
      // is posted the shard frees it.
      const int target = l->ring_fd;
      const std::uint64_t wake = user_data(l, role_wake);
      l->done.store(true, std::memory_order_release);
      post(ring, target, wake);
    }
    io_uring_queue_exit(&ring);
  }

  // Posts the answer to the shard's ring. A full completion queue there (-EOVERFLOW) or a busy
  // ring is retried after a millisecond: the shard drains its CQ every turn, and a lost answer
  // would leave its task waiting forever. Any other failure means the ring is gone (its shard
  // ended): nobody waits any more.
  static void post(io_uring& ring, int target, std::uint64_t wake) {
    for (;;) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_msg_ring(sqe, target, 0, wake, 0);
      io_uring_submit_and_wait(&ring, 1);
      io_uring_cqe* cqe = nullptr;
      int res = -EBADF;
      if (io_uring_peek_cqe(&ring, &cqe) == 0) {
        res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
      }
      if (res != -EOVERFLOW && res != -EAGAIN && res != -EBUSY) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  static void answer(lookup& l) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    l.status = ::getaddrinfo(l.host.c_str(), nullptr, &hints, &list);
    if (l.status != 0) return;
    for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN];
      const void* src =
          a->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
      if (::inet_ntop(a->ai_family, src, text, sizeof text) == nullptr) continue;
      result<socket_address> addr = socket_address::parse(text, 0);
      if (addr && std::find(l.addresses.begin(), l.addresses.end(), *addr) == l.addresses.end()) {
        l.addresses.push_back(*addr);
      }
    }
    ::freeaddrinfo(list);
    if (l.addresses.empty()) l.status = EAI_NONAME;
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<lookup*> queue_;
  std::thread thread_;
  bool stop_ = false;
};

// Awaits the helper's answer to `l`; false when the fiber was cancelled first.
struct answer_awaiter {
  lookup* l;
  bool await_ready() const noexcept { return false; }
  template <fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    cancel_node* node = h.promise().node_;
    if (node != nullptr && node->cancelled()) {
      l->abandoned = true;  // never submitted: free it here
      return false;
    }
    l->waiter = h;
    l->node = node;
    l->owners = 2;
    l->ring_fd = shard_core::current().ring_fd();
    shard_core::current().expect_external();
    lookup_service::instance().submit(l);
    if (node != nullptr) node->park(l);
    return true;
  }
  bool await_resume() const noexcept { return !l->abandoned; }
};

std::vector<socket_address> with_port(const std::vector<socket_address>& v, std::uint16_t port) {
  std::vector<socket_address> out;
  out.reserve(v.size());
  for (const socket_address& a : v) out.push_back(*socket_address::parse(a.host(), port));
  return out;
}

}  // namespace

task<result<std::vector<socket_address>>> resolver::resolve(std::string host, std::uint16_t port) {
  if (result<socket_address> literal = socket_address::parse(host, port)) {
    co_return std::vector<socket_address>{*literal};
  }
  const auto now = loop_now();
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (now < it->second.expires) co_return with_port(it->second.addresses, port);
    cache_.erase(it);
  }
  auto* l = new lookup;
  l->host = host;
  const bool answered = co_await answer_awaiter{l};
  if (!answered) {
    l->unref();
    co_return fail(std::errc::operation_canceled);
  }
  const int status = l->status;
  std::vector<socket_address> addresses = std::move(l->addresses);
  l->unref();
  if (status != 0) co_return fail(errc::resolve_failed);
  const auto ttl = std::chrono::duration_cast<loop_clock::duration>(ttl_);
  if (ttl.count() > 0) cache_[host] = entry{addresses, loop_now() + ttl};
  co_return with_port(addresses, port);
}

}  // namespace conpool::detail
