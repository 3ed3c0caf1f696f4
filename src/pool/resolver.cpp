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

// A task waiting for a flight (lives in its frame).
struct flight_waiter : cancel_hook {
  std::coroutine_handle<> handle;
  cancel_node* node = nullptr;
  flight_waiter* prev = nullptr;
  flight_waiter* next = nullptr;
  resolver::flight* on = nullptr;  // while linked
  bool cancelled = false;
  int status = 0;
  std::vector<socket_address> addresses;
};

}  // namespace

// One lookup of one host, shared by every task of the shard that asked for it meanwhile.
// Heap-allocated: the helper writes its answer, the shard frees it when the answer arrives
// (whoever waits by then, even nobody: the answer is cached all the same).
struct resolver::flight : completion {
  std::string host;
  int ring_fd = -1;               // the asking shard's ring
  std::atomic<bool> done{false};  // the helper's writes below happen before this is set
  int status = 0;                 // a getaddrinfo EAI_* code, 0 on success
  std::vector<socket_address> addresses;
  // Shard side only.
  resolver* owner = nullptr;  // nullptr once the resolver is gone
  flight_waiter* waiters = nullptr;

  static void on_answer(completion* c, unsigned, int, unsigned) noexcept {
    auto* f = static_cast<flight*>(c);
    (void)f->done.load(std::memory_order_acquire);
    if (f->owner != nullptr) {
      f->owner->landed(f);
    } else {
      delete f;
    }
  }
  flight() : completion{&flight::on_answer} {}

  void link(flight_waiter* w) noexcept {
    w->on = this;
    w->prev = nullptr;
    w->next = waiters;
    if (waiters != nullptr) waiters->prev = w;
    waiters = w;
  }
  void unlink(flight_waiter* w) noexcept {
    (w->prev != nullptr ? w->prev->next : waiters) = w->next;
    if (w->next != nullptr) w->next->prev = w->prev;
    w->on = nullptr;
  }
};

namespace {

// The helper threads, shared by all shards; started as lookups need them (up to 8), joined at
// exit. A stuck lookup (a silent DNS server) holds one helper until glibc gives up on it; the
// others go on with other names.
class lookup_service {
 public:
  static constexpr std::size_t max_helpers = 8;

  static lookup_service& instance() {
    static lookup_service s;
    return s;
  }
  void submit(resolver::flight* f) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(f);
      if (idle_ == 0 && helpers_.size() < max_helpers) {
        helpers_.emplace_back([this] { run(); });
      }
    }
    wake_.notify_one();
  }
  ~lookup_service() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : helpers_) t.join();
    if (ring_ready_) io_uring_queue_exit(&ring_);
  }

 private:
  void run() {
    for (;;) {
      resolver::flight* f = nullptr;
      {
        std::unique_lock lock(mutex_);
        ++idle_;
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty()) break;
        f = queue_.front();
        queue_.pop_front();
      }
      answer(*f);
      // Everything the helper needs of `f` is read before `done` publishes it: once the answer
      // is posted the shard frees it.
      const int target = f->ring_fd;
      const std::uint64_t wake = user_data(f, role_wake);
      f->done.store(true, std::memory_order_release);
      post(target, wake);
    }
  }

  // Posts the answer to the shard's ring through the helpers' one small ring (one descriptor
  // for the process's life, made on first use). A full completion queue there (-EOVERFLOW) or
  // a busy ring is retried after a millisecond: the shard drains its CQ every turn, and a lost
  // answer would leave its tasks waiting forever. Any other failure means the ring is gone
  // (its shard ended): nobody waits any more.
  void post(int target, std::uint64_t wake) {
    std::lock_guard lock(post_mutex_);
    if (!ring_ready_) {
      if (io_uring_queue_init(4, &ring_, 0) != 0) std::abort();  // shards would wait forever
      ring_ready_ = true;
    }
    for (;;) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_msg_ring(sqe, target, 0, wake, 0);
      io_uring_submit_and_wait(&ring_, 1);
      io_uring_cqe* cqe = nullptr;
      int res = -EBADF;
      if (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
      }
      if (res != -EOVERFLOW && res != -EAGAIN && res != -EBUSY) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  static void answer(resolver::flight& f) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    f.status = ::getaddrinfo(f.host.c_str(), nullptr, &hints, &list);
    if (f.status != 0) return;
    for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN];
      const void* src =
          a->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
      if (::inet_ntop(a->ai_family, src, text, sizeof text) == nullptr) continue;
      result<socket_address> addr = socket_address::parse(text, 0);
      if (addr && std::find(f.addresses.begin(), f.addresses.end(), *addr) == f.addresses.end()) {
        f.addresses.push_back(*addr);
      }
    }
    ::freeaddrinfo(list);
    if (f.addresses.empty()) f.status = EAI_NONAME;
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<resolver::flight*> queue_;
  std::vector<std::thread> helpers_;
  std::size_t idle_ = 0;
  bool stop_ = false;
  std::mutex post_mutex_;
  io_uring ring_{};
  bool ring_ready_ = false;
};

void waiter_cancelled(cancel_hook* h) noexcept {
  auto* w = static_cast<flight_waiter*>(h);
  if (w->on != nullptr) w->on->unlink(w);  // the flight goes on for the others
  w->cancelled = true;
  w->node->unpark(w);
  shard_core::current().schedule(w->handle);
}

// Waits for `f`'s answer (or the caller's cancellation).
struct flight_awaiter {
  resolver::flight* f;
  flight_waiter& w;
  bool await_ready() const noexcept { return false; }
  template <fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    cancel_node* node = h.promise().node_;
    if (node != nullptr && node->cancelled()) {
      w.cancelled = true;
      return false;
    }
    w.handle = h;
    w.node = node;
    f->link(&w);
    if (node != nullptr) node->park(&w);
    return true;
  }
  void await_resume() const noexcept {}
};

std::vector<socket_address> with_port(const std::vector<socket_address>& v, std::uint16_t port) {
  std::vector<socket_address> out;
  out.reserve(v.size());
  for (const socket_address& a : v) out.push_back(*socket_address::parse(a.host(), port));
  return out;
}

}  // namespace

resolver::~resolver() {
  for (auto& [host, f] : flights_) f->owner = nullptr;  // its answer frees it
}

void resolver::landed(flight* f) noexcept {
  flights_.erase(f->host);
  const auto ttl = std::chrono::duration_cast<loop_clock::duration>(ttl_);
  if (ttl.count() > 0) {
    if (f->status == 0) {
      entry& e = cache_[f->host];
      auto in = [](const std::vector<socket_address>& v, const socket_address& a) {
        return std::find(v.begin(), v.end(), a) != v.end();
      };
      std::vector<socket_address> gone;     // missing twice in a row: reported
      std::vector<socket_address> missing;  // missing this once: watched
      for (const socket_address& a : e.missing) {
        if (!in(f->addresses, a)) gone.push_back(a);
      }
      for (const socket_address& a : e.addresses) {
        if (!in(f->addresses, a) && !in(gone, a)) missing.push_back(a);
      }
      e = entry{f->addresses, std::move(missing), loop_now() + ttl};
      if (!gone.empty() && on_dropped) on_dropped(f->host, gone);
    } else if (auto it = cache_.find(f->host); it != cache_.end()) {
      // A failed refresh keeps the old answer (a DNS outage drains nothing) and is tried again
      // later, not at every tick.
      it->second.expires = loop_now() + std::min(ttl, loop_clock::duration(std::chrono::seconds(5)));
    }
  }
  while (flight_waiter* w = f->waiters) {
    f->unlink(w);
    w->status = f->status;
    w->addresses = f->addresses;
    if (w->node != nullptr) w->node->unpark(w);
    shard_core::current().schedule(w->handle);
  }
  delete f;
}

std::optional<std::vector<socket_address>> resolver::answer_now(const std::string& host,
                                                                std::uint16_t port) {
  if (result<socket_address> literal = socket_address::parse(host, port)) {
    return std::vector<socket_address>{*literal};
  }
  if (auto it = cache_.find(host); it != cache_.end() && loop_now() < it->second.expires) {
    return with_port(it->second.addresses, port);
  }
  return std::nullopt;  // past its TTL, the answer stays until the next one replaces it
}

bool resolver::stale(const std::string& host) const {
  if (ttl_.count() <= 0 || flights_.contains(host)) return false;
  auto it = cache_.find(host);
  return it == cache_.end() || loop_now() >= it->second.expires;
}

task<result<std::vector<socket_address>>> resolver::resolve(std::string host, std::uint16_t port) {
  if (std::optional<std::vector<socket_address>> known = answer_now(host, port)) {
    co_return std::move(*known);
  }
  flight* f = nullptr;
  if (auto it = flights_.find(host); it != flights_.end()) {
    f = it->second;  // asked already: this task joins that lookup
  } else {
    f = new flight;
    f->host = host;
    f->owner = this;
    f->ring_fd = shard_core::current().ring_fd();
    flights_.emplace(host, f);
    ++lookups_;
    shard_core::current().expect_external();  // its answer comes as a role_wake
    lookup_service::instance().submit(f);
  }
  flight_waiter w;
  w.request = &waiter_cancelled;
  co_await flight_awaiter{f, w};
  if (w.cancelled) co_return fail(std::errc::operation_canceled);
  if (w.status != 0) co_return fail(errc::resolve_failed);
  co_return with_port(w.addresses, port);
}

void resolver::forget_expired(const std::function<bool(const std::string& host)>& in_use) {
  const auto now = loop_now();
  std::erase_if(cache_, [&](const auto& kv) {
    return now >= kv.second.expires && !flights_.contains(kv.first) && !in_use(kv.first);
  });
}

}  // namespace conpool::detail
