#!/usr/bin/env bash
# Fuzzes Berth's parsers of outside input with libFuzzer (docs/testing.md).
#
#   scripts/fuzz.sh [--time SECONDS] [--parallel N] [TARGET...]
#
# Builds the fuzz targets in build-asan/ (clang, ASan + UBSan, BERTH_FUZZ=ON:
# the same build as scripts/test.sh --sanitize), then runs TARGETs (default:
# all of tests/fuzz/*/) for SECONDS each (default 1800), N at a time (default
# 1), at nice 19. Each run starts from the seed corpus tests/fuzz/<target>/
# and the inputs found so far in build-asan/fuzz/<target>/corpus/; crashes,
# leaks and timeouts go to build-asan/fuzz/<target>/ with the run's log.
# Every run is inside a mount namespace where / is read-only and /tmp is a
# small tmpfs, so that a target (layer_apply writes files as root) cannot
# damage the host whatever the input. A finding, minimised with
# `bin/fuzz_<target> -minimize_crash=1 -runs=10000 CRASH`, belongs in
# tests/fuzz/<target>/ once fixed.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
seconds=1800
parallel=1
targets=()
while (($#)); do
  case "$1" in
    --time) seconds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [[ "$(id -u)" != 0 ]]; then
  echo "scripts/fuzz.sh: needs root (mount namespace; layer_apply keeps owners and devices)" >&2
  exit 1
fi
if ((${#targets[@]} == 0)); then
  for d in "$top"/tests/fuzz/*/; do targets+=("$(basename "$d")"); done
fi

build="$top/build-asan"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DBERTH_SANITIZE=address -DBERTH_FUZZ=ON "${launcher[@]}" >/dev/null
make -C "$build" -j"$(nproc)" "${targets[@]/#/fuzz_}"

run_one() {
  local t="$1" work="$build/fuzz/$1"
  mkdir -p "$work/corpus" "$work/scratch"
  # Inside the namespace: the work dir stays writable, /tmp becomes a small
  # tmpfs (also the scratch root of layer_apply), then / turns read-only.
  unshare --mount --propagation private -- bash -c '
    set -e
    work="$1"; shift
    mount --bind "$work" "$work"
    mount -t tmpfs -o size=512m,nr_inodes=200000,mode=1777 berth-fuzz /tmp
    mount -o remount,bind,ro /
    cd "$work"
    exec nice -n 19 "$@"' _ "$work" \
    env BERTH_FUZZ_SCRATCH=/tmp ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$top/tests/fuzz/$t" \
    >"$work/log" 2>&1
}

summary() {
  local t="$1" work="$build/fuzz/$1" status="$2"
  local execs cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  local findings
  findings=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
  printf '%-18s exit=%-3s execs=%-10s cov=%-6s ft=%-6s corpus=%-6s findings=%s\n' \
    "$t" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$findings"
}

declare -A pids=()
failed=0
for t in "${targets[@]}"; do
  while ((${#pids[@]} >= parallel)); do
    wait -n || true
    for p in "${!pids[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then
        wait "$p" && s=0 || s=$?
        summary "${pids[$p]}" "$s"
        ((s == 0)) || failed=1
        unset "pids[$p]"
      fi
    done
  done
  echo "fuzzing $t for ${seconds}s (log: $build/fuzz/$t/log)"
  run_one "$t" &
  pids[$!]="$t"
done
for p in "${!pids[@]}"; do
  wait "$p" && s=0 || s=$?
  summary "${pids[$p]}" "$s"
  ((s == 0)) || failed=1
done
exit "$failed"
