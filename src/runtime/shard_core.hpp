// SPDX-License-Identifier: MIT
#pragma once
// The shard's state: ring, ready queue, in-flight accounting, MSG_RING inbox. Touched only by
// the shard's own thread; operations reach it through `shard_core::current()`.

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include <conpool/detail/cancel_node.hpp>
#include <conpool/io.hpp>
#include <conpool/shard.hpp>

#include "ring_buffer.hpp"
#include "shard_group.hpp"

namespace conpool::detail {

class shard_core;
// initial-exec: a plain %fs-relative load even from the shared library.
extern thread_local shard_core* t_current_core __attribute__((tls_model("initial-exec")));

/// A coroutine that starts when scheduled and frees its own frame when it ends: the driver of a
/// detached or scoped child. Its body must not throw.
struct detached_fiber {
  struct promise_type : promise_base {
    detached_fiber get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

/// What a post between shards aims at. `sent` is set by `shard_core::post` and read before the
/// target is touched where it arrives: the kernel carries the post, this tells the memory model
/// (and TSan) that what the sender wrote came with it.
struct post_target : completion {
  std::atomic<bool> sent{false};
};

/// The same for `io::msg_send`, whose message carries no address: what a task wrote before
/// sending happens before what the receiving task reads after its `msg_receive`.
inline std::atomic<std::uint64_t> g_messages_sent{0};

class shard_core {
 public:
  /// A shard of `group` at place `index`, or (no group) a group of one of its own.
  explicit shard_core(const shard_options& options, shard_group* group = nullptr,
                      unsigned index = 0);
  ~shard_core();
  shard_core(const shard_core&) = delete;
  shard_core& operator=(const shard_core&) = delete;

  /// The calling thread's shard; operations are only awaited where one runs.
  static shard_core& current() noexcept { return *t_current_core; }

  /// An SQE, with room left for `reserve - 1` more in the same batch (a linked pair asks for
  /// 2); flushes a full SQ first. Never null.
  io_uring_sqe* sqe(unsigned reserve = 1) noexcept;
  /// `n` more CQEs are owed to this shard's operations.
  void expect(unsigned n) noexcept { inflight_ += n; }
  /// Of the CQEs owed, `n` more (or, negative, fewer) belong to standing operations that never
  /// make a task ready by themselves (the pool's per-connection monitors): they do not keep a
  /// loop whose tasks all wait from being reported as deadlocked (libuv calls this unref).
  void add_background(int n) noexcept { background_ += static_cast<std::uint64_t>(n); }
  /// A helper thread owes this shard a wake-up (a MSG_RING with role_wake): the loop waits
  /// for it rather than report a deadlock, and the destructor waits for it.
  void expect_external() noexcept { ++external_; }
  /// Waits, inside the current turn, until `owed` (a count of CQEs its owner expects) is 0:
  /// for destructors whose objects the kernel still points at. Other completions met meanwhile
  /// are handled as usual (their tasks are scheduled, not run).
  void wait_for_cqes(const std::uint64_t& owed) noexcept {
    while (owed > 0) {
      enter(true);
      reap();
    }
  }
  /// True when the kernel holds completions this shard has not applied yet: task work it has
  /// not run (IORING_SQ_TASKRUN, where the ring has IORING_SETUP_TASKRUN_FLAG), CQEs not yet
  /// reaped, or CQEs stashed off a full CQ. Two loads from the rings, no syscall.
  [[nodiscard]] bool kernel_has_news() const noexcept {
    return (__atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_TASKRUN) != 0 ||
           io_uring_cq_ready(&ring_) != 0 || !stash_.empty();
  }
  /// Applies that news now, inside the turn: one io_uring_enter (which also submits what is
  /// prepared) and a reap; tasks it wakes are scheduled, not run. Does nothing while the shard
  /// is reaping already (a completion's handler asked).
  void catch_up() noexcept {
    if (reaping_) return;
    enter(false);
    reap();
  }
  /// The time of this loop turn (one clock read per turn).
  [[nodiscard]] std::chrono::steady_clock::time_point now() const noexcept { return now_; }
  /// Runs `h` in a later turn (FIFO).
  void schedule(std::coroutine_handle<> h) { ready_.push(h); }

  /// Work for the end of this turn: once the ready tasks have run, before the ring is entered.
  /// SQEs prepared then reach the kernel at the same enter as if prepared earlier, so a hook
  /// can wait to see whether they are still needed (the pool arms idle watchers this way).
  struct turn_hook {
    void (*run)(turn_hook*) noexcept = nullptr;
    bool queued = false;
  };
  void at_turn_end(turn_hook* h) {
    if (h->queued) return;
    h->queued = true;
    turn_hooks_.push_back(h);
  }
  /// Forgets `h` (its owner is going away).
  void drop_turn_hook(turn_hook* h) noexcept;

  /// Runs until `h` is done (true), or until nothing can ever wake it (false: a deadlock).
  bool drive(std::coroutine_handle<> h, promise_base& p);
  [[noreturn]] static void throw_deadlock();
  std::size_t poll();
  int notify_fd();
  void spawn(task<void> t);
  /// `spawn`, with the fiber's node under `parent` instead of the shard's root: its owner
  /// cancels such fibers itself (a pool's background work, cancelled when the pool closes).
  void spawn_under(cancel_node& parent, task<void> t);
  [[nodiscard]] std::size_t spawned() const noexcept { return spawned_; }

  /// The shards this one works with, and its place among them.
  [[nodiscard]] shard_group& group() const noexcept { return *group_; }
  [[nodiscard]] unsigned index() const noexcept { return index_; }
  /// Posts `c` to shard `to` of the group (IORING_OP_MSG_RING, with the next submission):
  /// there its on_cqe runs with role_post and res 0. No CQE here unless the post fails (the
  /// target's CQ is full): then on_cqe runs here with role_post and res < 0, and `c` is still
  /// the sender's.
  void post(unsigned to, post_target* c) noexcept;
  /// A post of `c` to shard `to` came back with `res` < 0: sent again when the target's CQ was
  /// full (the post never left, `c` is still the sender's); any other failure means the rings
  /// are unusable: the process stops with a message naming it.
  void repost(unsigned to, post_target* c, int res) noexcept;
  /// Another shard may wake a task of this one (a post is due): the loop waits for it rather
  /// than report a deadlock. Paired with `unhold`.
  void hold() noexcept { ++holds_; }
  void unhold() noexcept { --holds_; }
  /// RCU: odd while the shard runs a turn (it may hold a snapshot), even while it waits in the
  /// kernel (it holds none); it changes at every turn.
  [[nodiscard]] std::uint64_t quiescent_mark() const noexcept {
    return qs_.load(std::memory_order_seq_cst);
  }

  // MSG_RING inbox.
  bool take_message(message& out) noexcept;
  void add_receiver(io::msg_receive_op* r) noexcept;
  void remove_receiver(io::msg_receive_op* r) noexcept;

  [[nodiscard]] int ring_fd() const noexcept { return ring_.ring_fd; }
  [[nodiscard]] ring_mode mode() const noexcept { return mode_; }
  [[nodiscard]] unsigned ring_flags() const noexcept { return flags_; }
  [[nodiscard]] bool has_socket_op() const noexcept { return has_socket_op_; }
  /// The kernel can move an armed timeout (IORING_TIMEOUT_UPDATE, Linux 5.11; told by
  /// IORING_OP_SHUTDOWN, which came with it): a pool part's one timer can be brought earlier.
  [[nodiscard]] bool timeout_updates() const noexcept { return timeout_updates_; }
  /// Socket options may go as linked SOCKET_URING_OP_SETSOCKOPT commands (Linux 6.7+): the
  /// ring has IORING_OP_URING_CMD, and no command has yet failed where the setsockopt syscall
  /// then worked (`no_socket_commands`: a kernel whose sockets take no commands).
  [[nodiscard]] bool socket_commands() const noexcept { return socket_commands_; }
  void no_socket_commands() noexcept { socket_commands_ = false; }
  /// The SQ ring's size: the most SQEs one linked batch can have.
  [[nodiscard]] unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
  [[nodiscard]] const shard_counters& counters() const noexcept { return counters_; }
  void count_frame() noexcept { ++counters_.frames; }

  shard* owner = nullptr;  // the public handle

 private:
  struct stashed_cqe {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };

  // Marks the shard's loop as running (run or poll) for one scope; refuses re-entry.
  struct loop_guard {
    loop_guard(shard_core& s, const char* who);
    ~loop_guard() { flag = false; }
    bool& flag;
  };

  void dispatch(std::uint64_t user_data, int res, unsigned flags) noexcept;
  void deliver(message m);
  std::size_t reap() noexcept;
  std::size_t run_ready();
  void run_turn_hooks() noexcept;
  void enter(bool wait) noexcept;
  void stash_cqes() noexcept;
  // RCU quiescent states, for groups of more than one (a lone shard is its own only reader).
  void pass_quiescent() noexcept {
    if (shared_) qs_.store(qs_.load(std::memory_order_relaxed) + 2, std::memory_order_seq_cst);
  }
  void go_offline() noexcept {
    if (shared_) qs_.store(qs_.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
  }
  void go_online() noexcept { go_offline(); }
  void drain_spawned() noexcept;
  void rethrow_spawn_error();
  detached_fiber run_detached(cancel_node* parent, task<void> t);

  io_uring ring_{};
  std::unique_ptr<shard_group> own_group_;  // a lone shard's group of one
  shard_group* group_ = nullptr;
  unsigned index_ = 0;
  bool shared_ = false;  // the group has other shards
  std::uint64_t holds_ = 0;  // posts other shards owe this one (see hold)
  alignas(64) std::atomic<std::uint64_t> qs_{1};
  alignas(64) unsigned flags_ = 0;
  ring_mode mode_ = ring_mode::plain;
  bool has_socket_op_ = false;
  bool timeout_updates_ = false;
  bool socket_commands_ = false;
  bool in_loop_ = false;  // inside run() or poll()
  bool reaping_ = false;  // inside reap(): completions' handlers run
  int notify_fd_ = -1;
  std::uint64_t inflight_ = 0;  // CQEs owed to our operations
  std::uint64_t background_ = 0;  // of those, owed to standing operations (add_background)
  std::uint64_t external_ = 0;  // wake-ups owed by helper threads
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  std::size_t spawned_ = 0;
  std::exception_ptr spawn_error_;
  cancel_node root_{nullptr};
  ring_buffer<std::coroutine_handle<>> ready_{256};
  std::vector<turn_hook*> turn_hooks_;
  std::vector<turn_hook*> running_hooks_;
  ring_buffer<message> inbox_{16};
  io::msg_receive_op* receivers_head_ = nullptr;
  io::msg_receive_op* receivers_tail_ = nullptr;
  std::size_t receivers_ = 0;
  std::vector<stashed_cqe> stash_;  // CQEs taken off a full CQ mid-turn, handled next reap
  shard_counters counters_;
};

/// The calling shard's time of this loop turn.
inline std::chrono::steady_clock::time_point loop_now() noexcept { return t_current_core->now(); }

}  // namespace conpool::detail
