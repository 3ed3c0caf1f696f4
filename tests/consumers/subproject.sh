#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tests/consumers/ (its meson.build) in a temporary directory with conpool as its subproject, and runs it.
set -euo pipefail
src=$(cd "$1" && pwd)      # conpool's source root
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/tests/consumers/meson.build" "$src/tests/consumers/consumer.cpp" "$work/"
mkdir "$work/subprojects"
ln -s "$src" "$work/subprojects/conpool"
meson setup "$work/build" "$work" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
ninja -C "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
