#!/usr/bin/env bash
# Builds Berth and runs every test: unit tests and integration tests that start
# a real berthd against a real registry (Debian's docker-registry on
# 127.0.0.1). Must run as root (layers keep ownership and device nodes).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
bash "$top/scripts/setup.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$top/build" -j"$(nproc)"
cd "$top/build"
ctest --output-on-failure -j"$(nproc)" "$@"
