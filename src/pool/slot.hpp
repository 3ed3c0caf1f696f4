// SPDX-License-Identifier: MIT
#pragma once
// One connection's place in an endpoint's slab, and the waiters of a slab. Only pool_core
// changes a slot's state (its transitions, and the table of legal ones, are in pool_core.hpp).

#include <chrono>
#include <coroutine>
#include <cstdint>

#include <conpool/close_reason.hpp>
#include <conpool/detail/cancel_node.hpp>
#include <conpool/detail/io_op.hpp>
#include <conpool/flow.hpp>

namespace conpool::detail {

using loop_clock = std::chrono::steady_clock;

class endpoint_slab;
struct slot_waiter;

/// Where a slot is in its life (see pool_core.hpp for the moves between these).
enum class slot_state : std::uint8_t {
  free,      ///< no connection; on the slab's free list
  opening,   ///< a task opens a connection in it (the endpoint's budget is taken)
  idle,      ///< on the idle stack
  checking,  ///< off the idle stack for config::health_check, not yet leased
  active,    ///< leased
  closing,   ///< its close is in the kernel; free once the kernel owes it nothing
  leaving,   ///< bound for another shard; sent once the kernel owes it nothing
  probing,   ///< off the idle stack for a background health check (still counted idle)
};
inline constexpr int slot_state_count = 8;

/// What the kernel holds of one of a slot's standing operations (its watcher, its monitor).
enum class kernel_op : std::uint8_t {
  off,         ///< not in the kernel
  armed,       ///< in the kernel, waiting for the peer
  cancelling,  ///< in the kernel, its cancel too
};

/// The monitor: a POLL_ADD for POLLRDHUP | POLLERR | POLLHUP armed once for the connection's
/// whole life, leased or idle, so that a FIN or RST is known at no per-request cost (a data
/// wake-up does not match its mask; the kernel filters it before any work). Its own completion,
/// as a slot's roles are taken by the watcher, its cancel, the close and a TLS close_notify.
/// `slot::gone_why` when the socket holds an error not read yet (reset or keepalive timeout:
/// the close asks SO_ERROR which, unless a lease's read took it first).
inline constexpr std::uint8_t error_pending = 0xff;

struct peer_monitor : completion {
  struct slot* owner = nullptr;
};

// One connection's place. Its completion serves four SQEs, told apart by role: the idle
// watcher (a zero-length recv, or a TLS record recv), the watcher's cancel, the IORING_OP_CLOSE
// and a TLS close_notify sent before it. Three cache lines, the first all the hit path needs.
struct alignas(64) slot : completion {
  static constexpr unsigned watch = role_main;
  static constexpr unsigned close = role_link;
  static constexpr unsigned unwatch = role_cancel;
  static constexpr unsigned goodbye = role_aux;

  // The hit path's line (with the completion's 8 bytes): what the gate, a lend and a release
  // read and write.
  endpoint_slab* slab = nullptr;
  loop_clock::time_point expires_at{};  // created_at + its lifetime (jittered)
  loop_clock::time_point idle_since{};  // when it last became idle (or opened)
  loop_clock::time_point lent_at{};     // when its last lease began
  slot* prev = nullptr;     // idle stack links; `next` also links the free list
  slot* next = nullptr;
  std::uint32_t use_count = 0;          // times handed out
  slot_state state = slot_state::free;
  kernel_op watcher = kernel_op::off;   // armed only while idle
  kernel_op monitor = kernel_op::off;   // armed from open to close (or leaving)
  bool peer_gone = false;   // the peer closed, reset or wrote unasked: never handed out again

  conpool::flow flow;
  loop_clock::time_point created_at{};
  loop_clock::time_point checked_at{};  // its last background health check
  loop_clock::time_point leak_seen{};   // lent_at of its lease last reported as a leak
  std::uint8_t owed = 0;                // CQEs the kernel owes this slot (monitor's included)
  std::uint8_t gone_why = 0;  // why it must not be lent (a close_reason, or error_pending)
  std::uint8_t bound_for = 0;  // leaving: the shard it goes to
  bool answers_ask = false;   // leaving: it answers that shard's ask_idle
  bool warming = false;       // opening: for the idle stack, by the pool itself
  bool trial = false;         // opening: the one open an endpoint that backs off allows
  std::uint32_t open_epoch = 0;  // opening: the slab's backoff epoch when it began
  slot_waiter* heir = nullptr;  // closing: the task that reopens in its place (stale retry)
  slot* older = nullptr;    // the shard's idle list, least recently given back first
  slot* newer = nullptr;    //   (kept only with max_idle_connections)
  peer_monitor monitor_op;
};

// A task waiting for a connection of an endpoint at its limit (lives in its frame).
struct slot_waiter : cancel_hook {
  endpoint_slab* slab = nullptr;
  std::coroutine_handle<> handle;
  cancel_node* node = nullptr;
  slot* granted = nullptr;  // a connection (checking or active), or a slot to open (opening)
  // acquire_timeout's end for this wait: the part's timer ends it (pool_core::expire_waiters),
  // no timer of its own.
  loop_clock::time_point deadline = loop_clock::time_point::max();
  bool cancelled = false;
  bool pool_closed = false;
  bool timed_out = false;
  slot_waiter* prev = nullptr;
  slot_waiter* next = nullptr;
};

}  // namespace conpool::detail
