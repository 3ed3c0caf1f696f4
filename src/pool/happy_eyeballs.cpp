// SPDX-License-Identifier: MIT
#include "happy_eyeballs.hpp"

#include <optional>
#include <utility>

#include <conpool/cancel.hpp>
#include <conpool/scope.hpp>

#include "shard_core.hpp"

namespace conpool::detail {

std::vector<socket_address> interleave_families(const std::vector<socket_address>& addresses) {
  if (addresses.empty()) return {};
  const int first = addresses.front().family();
  std::vector<socket_address> mine;
  std::vector<socket_address> other;
  for (const socket_address& a : addresses) (a.family() == first ? mine : other).push_back(a);
  std::vector<socket_address> out;
  out.reserve(addresses.size());
  for (std::size_t i = 0, j = 0; i < mine.size() || j < other.size();) {
    if (i < mine.size()) out.push_back(mine[i++]);
    if (j < other.size()) out.push_back(other[j++]);
  }
  return out;
}

namespace {

struct kick_awaiter;

// What the attempts share.
struct race {
  std::optional<flow> winner;
  std::error_code last;
  int failed = 0;
  kick_awaiter* starter = nullptr;  // the loop waiting to start the next attempt

  void kick() noexcept;
};

// The starter's wait for an attempt's news (a failure, or a winner); cancellable, so that the
// attempt delay (with_timeout) can cut it.
struct kick_awaiter : cancel_hook {
  race& r;
  std::coroutine_handle<> handle;
  cancel_node* node = nullptr;

  explicit kick_awaiter(race& rr) noexcept : cancel_hook{&kick_awaiter::cancelled}, r(rr) {}
  bool await_ready() const noexcept { return false; }
  template <fiber_promise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    node = h.promise().node_;
    if (node != nullptr && node->cancelled()) return false;
    handle = h;
    r.starter = this;
    if (node != nullptr) node->park(this);
    return true;
  }
  void await_resume() const noexcept {}
  void wake() noexcept {
    r.starter = nullptr;
    if (node != nullptr) node->unpark(this);
    shard_core::current().schedule(handle);
  }
  static void cancelled(cancel_hook* h) noexcept { static_cast<kick_awaiter*>(h)->wake(); }
};

void race::kick() noexcept {
  if (starter != nullptr) starter->wake();
}

task<void> news(race& r) { co_await kick_awaiter{r}; }

task<void> attempt(race& r, socket_address to, const socket_options& options, time_limit limit,
                   scope& sc) {
  result<flow> f = co_await connect(to, limit.left(), options);
  if (f) {
    if (!r.winner) {
      r.winner = std::move(*f);
      sc.cancel();  // the others lose: their connects are cancelled, their sockets closed
    }
    // A second connection after the winner: closed with its flow.
  } else {
    if (f.error() != std::errc::operation_canceled) r.last = f.error();
    ++r.failed;
  }
  r.kick();
}

}  // namespace

task<result<flow>> connect_first(std::vector<socket_address> addresses,
                                 const socket_options& options,
                                 std::chrono::nanoseconds attempt_delay, time_limit limit) {
  if (addresses.size() == 1) co_return co_await connect(addresses.front(), limit.left(), options);
  const std::vector<socket_address> order = interleave_families(addresses);
  race r;
  co_await scoped([&](scope& sc) -> task<void> {
    for (std::size_t i = 0; i < order.size() && !r.winner; ++i) {
      const int failed_before = r.failed;
      sc.spawn(attempt(r, order[i], options, limit, sc));
      if (i + 1 == order.size()) break;
      // The next attempt: after the delay, or at once when an attempt fails (RFC 8305 5).
      bool cut = false;
      while (!r.winner && r.failed == failed_before && !cut) {
        result<void> waited = co_await with_timeout(attempt_delay, news(r));
        cut = !waited;  // the delay passed (or the caller was cancelled)
      }
      const detail::cancel_node* node = co_await detail::current_node{};
      if (node != nullptr && node->cancelled()) break;
      // Past the open's limit: no attempt starts that could only time out at once.
      if (const op_timeout left = limit.left(); left && left->count() == 0) break;
    }
    co_await sc.join();
  });
  if (r.winner) co_return std::move(*r.winner);
  if (r.last) co_return fail(r.last);
  co_return fail(std::errc::operation_canceled);
}

}  // namespace conpool::detail
