#!/usr/bin/env bash
# Builds Berth and runs every test: unit tests, fuzz corpora, and integration
# tests that start a real berthd against a real registry (Debian's
# docker-registry on 127.0.0.1). Must run as root: layers keep ownership and
# device nodes, and pods need namespaces, mounts and cgroups.
#
#   scripts/test.sh [ctest args...]                   build/, the normal suite
#   scripts/test.sh --sanitize [ctest args...]        build-asan/: clang, ASan + UBSan,
#                                                     fuzz targets as libFuzzer binaries
#   scripts/test.sh --sanitize=thread [ctest args...] build-tsan/: clang, TSan
#
# In sanitizer runs every report, also of daemons and their helpers, is a
# failure (docs/testing.md).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"

if [[ "$(id -u)" != 0 ]]; then
  echo "scripts/test.sh: the tests need root (namespaces, mounts, cgroups, device nodes);" \
    "run it as root, e.g. sudo bash scripts/test.sh" >&2
  exit 1
fi

sanitize=""
case "${1:-}" in
  --sanitize | --sanitize=address) sanitize=address; shift ;;
  --sanitize=thread) sanitize=thread; shift ;;
  --sanitize=*) echo "scripts/test.sh: unknown sanitizer in $1 (address or thread)" >&2; exit 2 ;;
esac

bash "$top/scripts/setup.sh"
jobs="$(nproc)"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

if [[ -z "$sanitize" ]]; then
  cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
  make -C "$top/build" -j"$jobs"
  cd "$top/build"
  exec ctest --output-on-failure -j"$jobs" "$@"
fi

if [[ "$sanitize" == address ]]; then
  build="$top/build-asan"
  extra=(-DBERTH_SANITIZE=address -DBERTH_FUZZ=ON)
else
  build="$top/build-tsan"
  extra=(-DBERTH_SANITIZE=thread)
fi
# No test runs berth-bench or its image tools: not built here.
extra+=(-DBERTH_BENCH=OFF)
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${extra[@]}" "${launcher[@]}" >/dev/null
make -C "$build" -j"$jobs"

# Reports of every instrumented process go to files (daemons and monitors have
# no useful stderr); test binaries send their own back to stderr
# (tests/sanitizer_report_to_stderr.cc) and the berthd fixtures fail the test
# whose daemon wrote one (tests/support/berthd_process.h). Whatever is left here
# after the run, e.g. from a monitor that exited after its test, fails the run.
reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
supp="$top/tests/sanitizer"
export ASAN_OPTIONS="log_path=$reports/report:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="log_path=$reports/report:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="log_path=$reports/report:halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
cd "$build"
status=0
ctest --output-on-failure -j"$jobs" "$@" || status=$?
mapfile -t found < <(find "$reports" -type f | sort)
if ((${#found[@]})); then
  echo "scripts/test.sh: ${#found[@]} sanitizer report(s) in $reports:" >&2
  for f in "${found[@]}"; do
    echo "=== $f" >&2
    cat "$f" >&2
  done
  status=1
fi
exit "$status"
