// SPDX-License-Identifier: MIT
#include <stdexcept>
#include <string>
#include <type_traits>

#include "support/support.hpp"

using namespace conpool;

static_assert(std::is_nothrow_move_constructible_v<task<int>>);
static_assert(!std::is_copy_constructible_v<task<int>>);
static_assert(std::is_nothrow_move_assignable_v<task<void>>);

namespace {

task<int> answer() { co_return 42; }
task<int> twice() { co_return 2 * co_await answer(); }
task<void> thrower() {
  throw std::runtime_error("boom");
  co_return;
}
task<int> catcher() {
  try {
    co_await thrower();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "boom" ? 1 : 0;
  }
  co_return -1;
}
task<int> depth(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await depth(n - 1);
}
task<std::string> move_only_value() { co_return std::string(1000, 'x'); }

}  // namespace

TEST_CASE("task: values flow through co_await") {
  shard s;
  CHECK(s.run(answer()) == 42);
  CHECK(s.run(twice()) == 84);
  CHECK(s.run(move_only_value()).size() == 1000);
}

TEST_CASE("task: is lazy: nothing runs until awaited, and an unawaited task frees its frame") {
  shard s;
  int runs = 0;
  auto make = [&runs]() -> task<void> {
    ++runs;
    co_return;
  };
  {
    task<void> t = make();
    CHECK(t.valid());
    CHECK(runs == 0);
  }  // destroyed without running (ASan checks the frame is freed)
  CHECK(runs == 0);
  s.run(make());
  CHECK(runs == 1);
}

TEST_CASE("task: exceptions propagate through co_await and out of run") {
  shard s;
  CHECK(s.run(catcher()) == 1);
  CHECK_THROWS_WITH_AS(s.run(thrower()), "boom", std::runtime_error);
}

TEST_CASE("task: a chain of 100000 nested awaits does not grow the stack, at any -O") {
  // Control passes through the shard's resume loop, not a tail call the optimiser may or may
  // not make: the same depth under -O0, ASan and TSan.
  constexpr int levels = 100000;
  shard s;
  CHECK(s.run(depth(levels)) == levels);
}

TEST_CASE("task: a million tasks that complete at once, awaited in a loop, do not grow the stack") {
  shard s;
  CHECK(s.run([]() -> task<long> {
    long n = 0;
    for (int i = 0; i < 1'000'000; ++i) n += co_await answer();
    co_return n;
  }()) == 42'000'000L);
}

TEST_CASE("task: result and errc") {
  result<int> ok = 3;
  result<int> bad = fail(errc::pool_closed);
  CHECK(ok.value() == 3);
  CHECK(bad.error() == errc::pool_closed);
  CHECK(bad.error().category().name() == std::string("conpool"));
  CHECK(bad.error() != std::errc::operation_canceled);
  CHECK(errno_error(-ECANCELED) == std::errc::operation_canceled);
  CHECK(describe(make_error_code(errc::connect_timeout), "127.0.0.1:6379", "connect") ==
        "127.0.0.1:6379: connect: connect timed out");
}
