// SPDX-License-Identifier: MIT
#pragma once
// What a fuzz target does when a property fails: says which, then aborts (libFuzzer keeps the
// input that did it).

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)
