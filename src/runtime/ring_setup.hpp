// SPDX-License-Identifier: MIT
#pragma once
// Ring set-up with the kernel's best flags for a mode, probed by trying them in turn.

#include <liburing.h>

#include <conpool/shard.hpp>

namespace conpool::detail {

struct ring_setup {
  unsigned flags;  // the IORING_SETUP_* in effect
  ring_mode mode;  // plain or defer_taskrun
};

/// Initialises `ring` for `options`. Throws std::system_error naming the set-up that failed.
ring_setup setup_ring(io_uring& ring, const shard_options& options);

/// True when `opcode` is supported by the kernel behind `ring`.
bool ring_supports(io_uring& ring, int opcode) noexcept;

}  // namespace conpool::detail
