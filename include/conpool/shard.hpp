// SPDX-License-Identifier: MIT
#pragma once
/// `shard`: one thread's io_uring ring, ready queue and frame allocator.
///
/// A shard is created on the thread that runs it and used only there (the ring is set up
/// SINGLE_ISSUER where the kernel allows). Each loop turn runs the ready coroutines, then
/// submits the SQEs they prepared and waits for completions in one io_uring_enter.
///
/// Two ways to drive it:
/// - `run(task)`: the shard's own loop, until the task finishes; gives its value.
/// - embedded in a host loop: `spawn` tasks, watch `notify_fd()` (readable when there is work)
///   and call the non-blocking `poll()` whenever it is.
///
/// Example:
///   conpool::shard s;
///   int v = s.run([]() -> task<int> { co_await sleep_for(1ms); co_return 7; }());

#include <chrono>
#include <cstdint>
#include <memory>

#include <conpool/task.hpp>

namespace conpool {

/// How the ring is set up.
enum class ring_mode {
  automatic,      ///< the best the kernel has: defer_taskrun, else plain
  plain,          ///< IORING_SETUP_COOP_TASKRUN where available, nothing else
  defer_taskrun,  ///< IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN (kernel 6.1+)
};

/// A shard's settings.
struct shard_options {
  ring_mode mode = ring_mode::automatic;
  unsigned entries = 256;  ///< SQ size, 2 to 16384; the CQ is four times larger
};

/// What a shard has done so far (for benchmarks and tests; read on the shard's thread).
struct shard_counters {
  std::uint64_t turns = 0;   ///< loop turns
  std::uint64_t enters = 0;  ///< io_uring_enter calls (submit, wait or both)
  std::uint64_t sqes = 0;    ///< SQEs prepared
  std::uint64_t cqes = 0;    ///< CQEs handled
  std::uint64_t frames = 0;  ///< coroutine frames allocated on this shard's thread
};

class shard_group;

namespace detail {
class shard_core;
class shard_group;
}

class shard {
 public:
  /// Sets up the ring. Throws std::system_error naming the setup that failed (e.g. a
  /// `defer_taskrun` ring on a kernel without it), or std::logic_error when this thread already
  /// has a shard.
  explicit shard(shard_options options = {});
  /// Shard `index` of `group`, on the calling thread (see shard_group.hpp for the host's
  /// part). Throws std::invalid_argument when `index` is out of the group's range,
  /// std::logic_error when that shard is up already or this thread has a shard; as above for
  /// the ring.
  shard(shard_group& group, unsigned index, shard_options options = {});
  /// Cancels the spawned tasks still running and drives the ring until they have finished
  /// (a task inside `shield` is not cancelled: the destructor waits for it).
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  /// The shard of the calling thread, or nullptr.
  static shard* current() noexcept;
  /// The time of the calling shard's loop turn: the steady clock as read once each time the
  /// loop comes back from the kernel, the clock the pool's own deadlines use. Free (no clock
  /// read), and for deadlines as fine as a turn. Off a shard's thread: the steady clock now.
  static std::chrono::steady_clock::time_point now() noexcept;

  /// Runs `t` to completion on this shard's loop and gives its value (or rethrows its
  /// exception). Also rethrows the first exception of a spawned task. Throws std::logic_error
  /// when called from inside the loop (run or poll), or when every task waits and nothing can
  /// wake them (their frames are then leaked, not destroyed); std::invalid_argument for an
  /// empty task.
  template <class T>
  T run(task<T> t) {
    if (!t.valid()) throw_empty_task();
    auto h = detail::task_access::handle(t);
    if (!drive(h, h.promise())) {
      // Destroying the suspended frames could free a scope its children still point at.
      detail::task_access::leak(t);
      throw_deadlock();
    }
    return h.promise().take();
  }

  /// Starts `t` detached, under the shard's root scope (cancelled when the shard is destroyed).
  /// Its exception, if any, is rethrown by the next `run` or `poll`. Makes `notify_fd()`
  /// readable when called from outside the loop. Throws std::invalid_argument for an empty task.
  void spawn(task<void> t);

  /// Embedding: one non-blocking round of work: submits pending SQEs, handles completions,
  /// runs ready tasks. Returns how many events it handled. If work remains after its budget it
  /// makes `notify_fd()` readable again, so the host comes back at once.
  std::size_t poll();
  /// Embedding: an eventfd registered with the ring, readable when `poll()` has work. Made on
  /// first call (without it, completions cost no eventfd signal).
  int notify_fd();
  /// Number of spawned tasks still running.
  [[nodiscard]] std::size_t spawned() const noexcept;

  /// The io_uring file descriptor (the target of `io::msg_send`).
  [[nodiscard]] int ring_fd() const noexcept;
  /// The ring set-up in effect (never `automatic`).
  [[nodiscard]] ring_mode mode() const noexcept;
  /// The IORING_SETUP_* flags the ring was created with.
  [[nodiscard]] unsigned ring_flags() const noexcept;
  [[nodiscard]] shard_counters counters() const noexcept;

  /// True when the running kernel supports `ring_mode::defer_taskrun`.
  static bool kernel_has_defer_taskrun();

 private:
  // Shard `index` of `group`'s slot, checked: in range and free.
  static detail::shard_group& member_slot(shard_group& group, unsigned index);
  bool drive(std::coroutine_handle<> h, detail::promise_base& p);
  [[noreturn]] static void throw_deadlock();
  [[noreturn]] static void throw_empty_task();
  std::unique_ptr<detail::shard_core> core_;
};

}  // namespace conpool
