// SPDX-License-Identifier: MIT
#pragma once
// The command line the three examples share:
//   conpool-example-<name> TARGET-URL [--requests N] [--concurrency C] [--user U] [--database D]
// --user and --database only for postgres. Bad arguments end the program with exit status 2.

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <conpool/conpool.hpp>

#include "url.hpp"

namespace conpool::examples {

struct example_options {
  clients::url target;
  int requests = 100;   ///< requests in all
  int concurrency = 1;  ///< workers issuing them, at most `requests`
  std::string user = "postgres";
  std::string database = "postgres";
};

/// What an example accepts: its name, the URL schemes it serves, whether --user/--database are
/// allowed, the default --concurrency.
struct example_usage {
  std::string_view program;
  std::string_view schemes;  ///< "http", "redis", "postgres postgresql"
  bool login = false;
  int concurrency = 1;
};

/// Parses argv. Throws std::invalid_argument naming the bad argument (url::parse's message for
/// a bad target).
inline example_options parse_options(int argc, char** argv, const example_usage& usage) {
  example_options o;
  o.concurrency = usage.concurrency;
  bool have_target = false;
  const auto count = [](std::string_view flag, std::string_view text) {
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || n < 1) {
      throw std::invalid_argument(std::string(flag) + " wants a count >= 1, not \"" +
                                  std::string(text) + "\"");
    }
    return n;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--requests" && has_value) {
      o.requests = count(arg, argv[++i]);
    } else if (arg == "--concurrency" && has_value) {
      o.concurrency = count(arg, argv[++i]);
    } else if (arg == "--user" && has_value && usage.login) {
      o.user = argv[++i];
    } else if (arg == "--database" && has_value && usage.login) {
      o.database = argv[++i];
    } else if (!arg.starts_with("--") && !have_target) {
      o.target = clients::url::parse(arg);
      have_target = true;
    } else {
      throw std::invalid_argument("unexpected argument \"" + std::string(arg) + "\"");
    }
  }
  if (!have_target) throw std::invalid_argument("no target URL");
  const std::string scheme = " " + o.target.scheme + " ";
  if (std::string(" ").append(usage.schemes).append(" ").find(scheme) == std::string::npos) {
    throw std::invalid_argument("bad target \"" + o.target.to_string() + "\": scheme " +
                                o.target.scheme + ":// is not " + std::string(usage.schemes));
  }
  if (o.concurrency > o.requests) o.concurrency = o.requests;
  return o;
}

/// parse_options, or a message and usage line on stderr and exit(2).
inline example_options options_or_exit(int argc, char** argv, const example_usage& usage) {
  try {
    return parse_options(argc, argv, usage);
  } catch (const std::invalid_argument& e) {
    std::cerr << usage.program << ": " << e.what() << "\nusage: " << usage.program << ' '
              << usage.schemes.substr(0, usage.schemes.find(' '))
              << "://HOST:PORT [--requests N] [--concurrency C]"
              << (usage.login ? " [--user U] [--database D]" : "") << '\n';
    std::exit(2);
  }
}

/// Runs `count` workers, `make()` making each task, and waits for all of them.
template <class Make>
task<void> in_parallel(int count, Make make) {
  co_await scoped([&](scope& s) -> task<void> {
    for (int i = 0; i < count; ++i) s.spawn(make());
    co_await s.join();
  });
}

/// The end every example shares: the pool's stats line (the tests read it), the pool closed,
/// then 0, or 1 with `failure` on stderr.
inline task<int> finish(pool& p, const endpoint& ep, const std::string& failure,
                        std::string_view program) {
  std::cout << "stats " << ep << ' ' << p.stats(ep) << std::endl;
  co_await p.close_pool();
  if (failure.empty()) co_return 0;
  std::cerr << program << ": " << failure << '\n';
  co_return 1;
}

/// main() of every example: its options (or exit 2), then `run` on a shard of this thread; an
/// exception is reported with the target, status 1.
inline int run_example(int argc, char** argv, const example_usage& usage,
                       task<int> (*run)(const example_options&)) {
  const example_options o = options_or_exit(argc, argv, usage);
  try {
    shard s;
    return s.run(run(o));
  } catch (const std::exception& e) {
    std::cerr << usage.program << ": " << o.target.to_string() << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace conpool::examples
