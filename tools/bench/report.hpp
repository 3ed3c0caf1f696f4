// SPDX-License-Identifier: MIT
#pragma once
// What conpool-bench prints and writes: the terminal table, the JSON file and the HTML page.

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "peers.hpp"
#include "runner.hpp"

namespace conpool::bench {

/// conpool's run against a target and a peer's against the same target.
struct comparison {
  std::size_t ours;  ///< index into report::runs
  peer_result theirs;
};

struct report {
  std::string command;
  std::vector<run_result> runs;
  std::vector<comparison> comparisons;

  /// pooled / fresh messages per second of the runs named `name`, when both ran.
  [[nodiscard]] std::optional<double> speedup(const std::string& name) const;
};

/// The table: a row a run, the pooled/fresh speedup, then each comparison with its ratio.
void print_table(std::ostream& os, const report& r);
/// Every figure, the machine and the command. Throws std::runtime_error naming the file.
void write_json(const std::string& path, const report& r);
/// One self-contained page (inline SVG and CSS, nothing fetched). Throws std::runtime_error.
void write_html(const std::string& path, const report& r);

}  // namespace conpool::bench
