// SPDX-License-Identifier: MIT
#pragma once
// Runs another program to its end and keeps what it printed: conpool-bench runs its peers
// (wrk, redis-benchmark) this way, and the tests run conpool-bench and the examples.

#include <string>
#include <vector>

namespace conpool::bench {

struct program_result {
  int status = -1;  ///< exit status; 128 + signal when killed; -1 when it could not start
  std::string out;  ///< standard output
  std::string err;  ///< standard error
};

/// Runs `argv` (argv[0] a path) with its stdout and stderr captured, and waits for it.
program_result run_program(std::vector<std::string> argv);

/// The full path of `name` on PATH, or empty.
std::string find_program(const std::string& name);

}  // namespace conpool::bench
