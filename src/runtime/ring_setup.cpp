// SPDX-License-Identifier: MIT
#include "ring_setup.hpp"

#include <string>
#include <system_error>

namespace conpool::detail {
namespace {

int try_flags(io_uring& ring, unsigned entries, unsigned flags) noexcept {
  io_uring_params p{};
  p.flags = flags | IORING_SETUP_CQSIZE;
  // Four CQEs per SQE: each operation may owe three (itself, linked timeout, cancel), and
  // completions of earlier turns may still be waiting.
  p.cq_entries = entries * 4;
  const int err = io_uring_queue_init_params(entries, &ring, &p);
  // The ring's own descriptor registered with the thread (5.18): io_uring_enter then skips
  // the file table lookup and reference of every call. Only an optimisation: a kernel
  // without it, or a thread with its 16 registered rings taken, enters by descriptor.
  if (err == 0) (void)io_uring_register_ring_fd(&ring);
  return err;
}

}  // namespace

ring_setup setup_ring(io_uring& ring, const shard_options& options) {
  // At least 2: an operation with a linked timeout needs two SQEs in one batch. At most 16384:
  // the CQ is four times larger, and the kernel's CQ limit is 65536.
  if (options.entries < 2 || options.entries > 16384) {
    throw std::invalid_argument("conpool::shard_options::entries: " +
                                std::to_string(options.entries) + " is out of range (2 to 16384)");
  }
  // SUBMIT_ALL (5.18): one bad SQE must not hold back the rest of the turn's batch.
  constexpr unsigned defer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  struct candidate {
    unsigned flags;
    ring_mode mode;
  };
  // TASKRUN_FLAG (5.19): the kernel says in the SQ ring's flags that it holds completions not
  // yet run, so the pool can tell without a syscall whether it is up to date (kernel_has_news).
  constexpr unsigned coop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  const candidate deferred[] = {
      {defer | coop | IORING_SETUP_SUBMIT_ALL, ring_mode::defer_taskrun},
      {defer | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, ring_mode::defer_taskrun},
      {defer, ring_mode::defer_taskrun},
  };
  const candidate plain[] = {
      {coop | IORING_SETUP_SUBMIT_ALL, ring_mode::plain},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, ring_mode::plain},
      {IORING_SETUP_COOP_TASKRUN, ring_mode::plain},
      {0, ring_mode::plain},
  };
  int err = 0;
  auto attempt = [&](const auto& list) -> const candidate* {
    for (const candidate& c : list) {
      err = try_flags(ring, options.entries, c.flags);
      if (err == 0) return &c;
      if (err != -EINVAL) return nullptr;
    }
    return nullptr;
  };
  if (options.mode != ring_mode::plain) {
    if (const candidate* c = attempt(deferred)) return {c->flags, c->mode};
    if (options.mode == ring_mode::defer_taskrun) {
      throw std::system_error(-err, std::system_category(),
                              "conpool::shard: io_uring set-up with SINGLE_ISSUER|DEFER_TASKRUN "
                              "(ring_mode::defer_taskrun, kernel 6.1+) failed");
    }
  }
  if (const candidate* c = attempt(plain)) return {c->flags, c->mode};
  throw std::system_error(-err, std::system_category(),
                          "conpool::shard: io_uring_queue_init with " +
                              std::to_string(options.entries) + " entries failed");
}

bool ring_supports(io_uring& ring, int opcode) noexcept {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) return false;
  const bool ok = io_uring_opcode_supported(probe, opcode) != 0;
  io_uring_free_probe(probe);
  return ok;
}

}  // namespace conpool::detail
