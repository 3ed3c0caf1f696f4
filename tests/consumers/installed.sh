#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the build into a temporary root, then builds and runs tests/consumers/consumer.cpp
# against it twice: through pkg-config (conpool.pc is relocatable: its prefix is found from
# where it lies) and through CMake (find_package(conpool)). Arguments: conpool's source root,
# the build directory.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
pc=$(find "$root" -name conpool.pc -print -quit)
config=$(find "$root" -name conpoolConfig.cmake -print -quit)
[ -n "$pc" ] || { echo "installed.sh: no conpool.pc was installed" >&2; exit 1; }
[ -n "$config" ] || { echo "installed.sh: no conpoolConfig.cmake was installed" >&2; exit 1; }
# Relocatable: the prefix is found from where the file lies, and no other path is absolute.
if ! grep -q '^prefix=${pcfiledir}/' "$pc" || grep -E '^(Libs|Cflags)[^:]*:.* -[IL]/' "$pc" ||
  grep -E '^[a-z]+dir=/' "$pc"; then
  echo "installed.sh: conpool.pc is not relocatable or names an absolute path:" >&2
  cat "$pc" >&2
  exit 1
fi
libdir=$(dirname "$(dirname "$pc")")

echo "== pkg-config"
flags=$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --cflags --libs conpool)
echo "pkg-config --cflags --libs conpool: $flags"
# shellcheck disable=SC2086  # the flags are words
c++ -o "$work/pc-consumer" "$src/tests/consumers/consumer.cpp" $flags
LD_LIBRARY_PATH="$libdir" "$work/pc-consumer"

echo "== CMake"
cmake -S "$src/tests/consumers" -B "$work/cmake" -G Ninja -Dconpool_DIR="$(dirname "$config")" \
  >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake" >"$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; exit 1; }
"$work/cmake/consumer"
