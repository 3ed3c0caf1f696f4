// SPDX-License-Identifier: MIT
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include <conpool/shard_group.hpp>

#include "frame_heap.hpp"
#include "ring_setup.hpp"
#include "shard_core.hpp"

namespace conpool {
namespace detail {

thread_local shard_core* t_current_core = nullptr;
thread_local std::coroutine_handle<> t_resume_next = nullptr;
thread_local unsigned t_transfers = 0;

namespace {

[[noreturn]] void fatal(const char* what, int err) noexcept {
  // Only reachable when the kernel refuses a ring that was working: nothing can be resumed
  // safely any more, so stop loudly rather than hang or corrupt frames.
  std::fprintf(stderr, "conpool: %s failed: %s\n", what, std::strerror(-err));
  std::abort();
}

// How many loop rounds one poll() may run before handing control back to the host.
constexpr int poll_budget = 64;

}  // namespace

shard_core::shard_core(const shard_options& options, shard_group* group, unsigned index) {
  if (t_current_core != nullptr) {
    throw std::logic_error("conpool::shard: this thread already has a shard (one per thread)");
  }
  const ring_setup setup = setup_ring(ring_, options);
  if (group == nullptr) {
    own_group_ = std::make_unique<shard_group>(1);
    group = own_group_.get();
  }
  group_ = group;
  index_ = index;
  shared_ = group->size() > 1;
  group->attach(index, this);
  flags_ = setup.flags;
  mode_ = setup.mode;
  has_socket_op_ = ring_supports(ring_, IORING_OP_SOCKET);
  timeout_updates_ = ring_supports(ring_, IORING_OP_SHUTDOWN);
  socket_commands_ = ring_supports(ring_, IORING_OP_URING_CMD);
  // Turn-end hooks are queued on hot paths (the pool's release): no allocation there.
  turn_hooks_.reserve(16);
  running_hooks_.reserve(16);
  frame_heap_attach();
  t_current_core = this;
}

shard_core::~shard_core() {
  drain_spawned();
  if (notify_fd_ >= 0) {
    io_uring_unregister_eventfd(&ring_);
    ::close(notify_fd_);
  }
  group_->detach(index_);
  io_uring_queue_exit(&ring_);
  t_current_core = nullptr;
  frame_heap_detach();
}

io_uring_sqe* shard_core::sqe(unsigned reserve) noexcept {
  while (io_uring_sq_space_left(&ring_) < reserve) {
    const int r = io_uring_submit(&ring_);
    ++counters_.enters;
    if (r >= 0 || r == -EINTR) continue;
    if (r == -EBUSY || r == -EAGAIN) {
      // The CQ is full (its overflow list is not empty): take the CQEs off it without handling
      // them yet, so this call never resumes anything inline, then try again.
      stash_cqes();
      continue;
    }
    fatal("io_uring_submit", r);
  }
  ++counters_.sqes;
  return io_uring_get_sqe(&ring_);
}

void shard_core::post(unsigned to, post_target* c) noexcept {
  c->sent.store(true, std::memory_order_release);
  io_uring_sqe* s = sqe();
  io_uring_prep_msg_ring(s, group_->ring_fd(to), 0, user_data(c, role_post), 0);
  // The sender hears of a post only when it fails: the target may free `c` the moment it
  // arrives, so a success CQE here could not name it.
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(s, user_data(c, role_post));
}

void shard_core::repost(unsigned to, post_target* c, int res) noexcept {
  if (res == -EOVERFLOW || res == -EAGAIN || res == -EBUSY) {
    post(to, c);
    return;
  }
  std::fprintf(stderr, "conpool: a post to shard %u failed: %s\n", to, std::strerror(-res));
  std::abort();
}

void shard_core::stash_cqes() noexcept {
  io_uring_get_events(&ring_);  // moves overflowed CQEs into the ring
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    stash_.push_back({cqe->user_data, cqe->res, cqe->flags});
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
}

void shard_core::enter(bool wait) noexcept {
  ++counters_.enters;
  // DEFER_TASKRUN rings complete nothing unless asked (GETEVENTS), so even the non-waiting
  // flush asks for events.
  if (wait) go_offline();
  const int r = wait ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit_and_get_events(&ring_);
  if (wait) go_online();
  // Once per kernel entry, where time passes: the pool reads this, never the clock itself.
  now_ = std::chrono::steady_clock::now();
  if (r >= 0 || r == -EINTR || r == -ETIME) return;
  if (r == -EBUSY || r == -EAGAIN) {
    stash_cqes();
    return;
  }
  fatal("io_uring_enter", r);
}

void shard_core::dispatch(std::uint64_t user_data, int res, unsigned flags) noexcept {
  const unsigned role = user_data & role_mask;
  if (role == role_message) {
    deliver({user_data >> 3, res});
    return;
  }
  auto* target = reinterpret_cast<completion*>(user_data & ~std::uint64_t{role_mask});
  if (role == role_wake) {
    --external_;
    target->on_cqe(target, role, res, flags);
    return;
  }
  if (role == role_post) {  // never counted in flight: see post()
    (void)static_cast<post_target*>(target)->sent.load(std::memory_order_acquire);
    target->on_cqe(target, role, res, flags);
    return;
  }
  --inflight_;
  target->on_cqe(target, role, res, flags);
}

std::size_t shard_core::reap() noexcept {
  if (reaping_) return 0;  // a handler's catch_up: the reap it runs in goes on
  reaping_ = true;
  std::size_t handled = 0;
  io_uring_cqe* cqes[64];
  for (;;) {
    // Stashed CQEs were taken off the ring after the batch before them and before what the
    // ring still holds: handling them first keeps completions (and messages) in order.
    if (!stash_.empty()) {
      std::vector<stashed_cqe> batch;
      batch.swap(stash_);
      for (const stashed_cqe& c : batch) dispatch(c.user_data, c.res, c.flags);
      handled += batch.size();
      continue;
    }
    const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
    if (n == 0) break;
    // Copy out, then free the CQ slots, then dispatch: a handler may prepare SQEs (a cancel),
    // and a flush then must find room in the CQ.
    stashed_cqe batch[64];
    for (unsigned i = 0; i < n; ++i) batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) dispatch(batch[i].user_data, batch[i].res, batch[i].flags);
    handled += n;
  }
  counters_.cqes += handled;
  reaping_ = false;
  return handled;
}

std::size_t shard_core::run_ready() {
  // Only what is ready now: tasks scheduled while running wait for the next turn, so I/O is
  // submitted and reaped between them and a busy task cannot starve completions.
  const std::size_t n = ready_.size();
  for (std::size_t i = 0; i < n; ++i) resume_chain(ready_.pop());
  return n;
}

void shard_core::run_turn_hooks() noexcept {
  if (turn_hooks_.empty()) return;
  running_hooks_.swap(turn_hooks_);  // a hook may queue itself again, for the next turn
  for (turn_hook* h : running_hooks_) {
    h->queued = false;
    h->run(h);
  }
  running_hooks_.clear();
}

void shard_core::drop_turn_hook(turn_hook* h) noexcept {
  if (!h->queued) return;
  std::erase(turn_hooks_, h);
  h->queued = false;
}

shard_core::loop_guard::loop_guard(shard_core& s, const char* who) : flag(s.in_loop_) {
  if (flag) {
    throw std::logic_error(std::string("conpool::shard::") + who +
                           ": called from inside the shard's own loop; co_await the task instead");
  }
  flag = true;
}

bool shard_core::drive(std::coroutine_handle<> h, promise_base& p) {
  loop_guard guard(*this, "run");
  cancel_node node(&root_);
  if (p.node_ == nullptr) p.node_ = &node;
  p.continuation_ = std::noop_coroutine();
  schedule(h);
  while (!h.done()) {
    ++counters_.turns;
    pass_quiescent();
    run_ready();
    if (h.done()) break;
    run_turn_hooks();
    const bool to_submit = io_uring_sq_ready(&ring_) > 0;
    if (ready_.empty() && stash_.empty()) {
      // Can anything still wake a task? Not background operations alone (add_background).
      const bool wakeable =
          inflight_ != background_ || receivers_ != 0 || external_ != 0 || holds_ != 0;
      if (wakeable) {
        enter(true);
      } else if (to_submit) {
        enter(false);  // what the last tasks prepared goes in (it may wake one); look again
      } else {
        return false;
      }
    } else if (to_submit || inflight_ > 0) {
      enter(false);  // tasks are ready: only flush and collect, never wait
    }
    // (Tasks ready and nothing owed by the kernel: a syscall would find nothing, so none.)
    reap();
  }
  // What the last task prepared (a post to another shard, a close) goes now, not at the next run.
  if (io_uring_sq_ready(&ring_) > 0) {
    ++counters_.enters;
    (void)io_uring_submit(&ring_);
  }
  rethrow_spawn_error();
  return true;
}

void shard_core::throw_deadlock() {
  throw std::logic_error(
      "conpool::shard::run: every task is waiting and nothing in flight can wake one "
      "(deadlock); the waiting frames are leaked, not destroyed");
}

std::size_t shard_core::poll() {
  loop_guard guard(*this, "poll");
  if (notify_fd_ >= 0) {
    eventfd_t ignored;
    // Drain before reaping: a completion posted after this read signals the fd again.
    (void)eventfd_read(notify_fd_, &ignored);
  }
  std::size_t handled = 0;
  for (int round = 0; round < poll_budget; ++round) {
    ++counters_.turns;
    pass_quiescent();
    enter(false);
    handled += reap();
    handled += run_ready();
    run_turn_hooks();
    if (ready_.empty() && io_uring_sq_ready(&ring_) == 0 && stash_.empty()) {
      rethrow_spawn_error();
      return handled;
    }
  }
  if (notify_fd_ >= 0) (void)eventfd_write(notify_fd_, 1);  // more to do: come back at once
  rethrow_spawn_error();
  return handled;
}

int shard_core::notify_fd() {
  if (notify_fd_ >= 0) return notify_fd_;
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::system_category(), "conpool::shard::notify_fd: eventfd");
  }
  if (const int r = io_uring_register_eventfd(&ring_, fd); r < 0) {
    ::close(fd);
    throw std::system_error(-r, std::system_category(),
                            "conpool::shard::notify_fd: io_uring_register_eventfd");
  }
  notify_fd_ = fd;
  // Completions posted before the eventfd existed signalled nothing: have the host poll once.
  (void)eventfd_write(fd, 1);
  return fd;
}

detached_fiber shard_core::run_detached(cancel_node* parent, task<void> t) {
  // A node per fiber: a node parks the one thing its fiber waits on.
  cancel_node node(parent);
  task_access::bind(t, &node);
  try {
    co_await std::move(t);
  } catch (...) {
    if (!spawn_error_) spawn_error_ = std::current_exception();
  }
  --spawned_;
}

void shard_core::spawn(task<void> t) { spawn_under(root_, std::move(t)); }

void shard_core::spawn_under(cancel_node& parent, task<void> t) {
  if (!t.valid()) throw std::invalid_argument("conpool::shard::spawn: empty task");
  detached_fiber f = run_detached(&parent, std::move(t));
  try {
    schedule(f.handle);
  } catch (...) {
    f.handle.destroy();
    throw;
  }
  ++spawned_;
  // An embedding host waits on notify_fd: tell it there is a task to start.
  if (notify_fd_ >= 0 && !in_loop_) (void)eventfd_write(notify_fd_, 1);
}

void shard_core::drain_spawned() noexcept {
  root_.cancel();
  while (spawned_ > 0 || !ready_.empty()) {
    run_ready();
    if (spawned_ == 0 && ready_.empty()) break;
    if (!stash_.empty()) {
      reap();
      continue;
    }
    if (ready_.empty() && inflight_ == background_ && external_ == 0 &&
        io_uring_sq_ready(&ring_) == 0) {
      // Spawned tasks wait on something that no completion will wake (a receiver with no
      // sender): leave their frames rather than hang the destructor.
      break;
    }
    enter(ready_.empty());
    reap();
  }
}

void shard_core::rethrow_spawn_error() {
  if (spawn_error_) std::rethrow_exception(std::exchange(spawn_error_, nullptr));
}

bool shard_core::take_message(message& out) noexcept {
  if (inbox_.empty()) return false;
  out = inbox_.pop();
  return true;
}

}  // namespace detail

// The public handle forwards to the core.

shard::shard(shard_options options) : core_(std::make_unique<detail::shard_core>(options)) {
  core_->owner = this;
}
detail::shard_group& shard::member_slot(shard_group& group, unsigned index) {
  detail::shard_group& g = *group.impl_;
  if (index >= g.size()) {
    throw std::invalid_argument("conpool::shard: index " + std::to_string(index) +
                                " is out of the group's range (0 to " +
                                std::to_string(g.size() - 1) + ")");
  }
  if (g.core(index) != nullptr) {
    throw std::logic_error("conpool::shard: shard " + std::to_string(index) +
                           " of the group is up already");
  }
  return g;
}

shard::shard(shard_group& group, unsigned index, shard_options options)
    : core_(std::make_unique<detail::shard_core>(options, &member_slot(group, index), index)) {
  core_->owner = this;
}
shard::~shard() = default;

shard* shard::current() noexcept {
  return detail::t_current_core == nullptr ? nullptr : detail::t_current_core->owner;
}

std::chrono::steady_clock::time_point shard::now() noexcept {
  return detail::t_current_core == nullptr ? std::chrono::steady_clock::now()
                                           : detail::t_current_core->now();
}

bool shard::drive(std::coroutine_handle<> h, detail::promise_base& p) { return core_->drive(h, p); }
void shard::throw_deadlock() { detail::shard_core::throw_deadlock(); }
void shard::throw_empty_task() {
  throw std::invalid_argument("conpool::shard::run: empty task (moved-from or default)");
}
void shard::spawn(task<void> t) { core_->spawn(std::move(t)); }
std::size_t shard::poll() { return core_->poll(); }
int shard::notify_fd() { return core_->notify_fd(); }
std::size_t shard::spawned() const noexcept { return core_->spawned(); }
int shard::ring_fd() const noexcept { return core_->ring_fd(); }
ring_mode shard::mode() const noexcept { return core_->mode(); }
unsigned shard::ring_flags() const noexcept { return core_->ring_flags(); }
shard_counters shard::counters() const noexcept { return core_->counters(); }

bool shard::kernel_has_defer_taskrun() {
  static const bool has = [] {
    io_uring ring{};
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(4, &ring, &p) != 0) return false;
    io_uring_queue_exit(&ring);
    return true;
  }();
  return has;
}

}  // namespace conpool
