#!/usr/bin/env bash
# Fails when clang-tidy (.clang-tidy) finds anything in our C++ (docs/testing.md):
# every translation unit of src/ and tests/ in build/compile_commands.json (the
# generated protobuf code in build/gen is not ours), and the headers they
# include from src/ and tests/. Needs a configured build/ (scripts/test.sh makes
# one) whose generated headers exist.
#   scripts/check-tidy.sh [FILE...]   only these translation units
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="${BERTH_TIDY_BUILD:-$top/build}"
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "scripts/check-tidy.sh: no $build/compile_commands.json; run scripts/test.sh first" >&2
  exit 2
fi
# run-clang-tidy takes regexes on the paths of the database.
if (($#)); then
  regexes=()
  for f in "$@"; do
    f="$(realpath "$f")"
    regexes+=("^${f//./\\.}\$")
  done
else
  regexes=("^$top/(src|tests)/.*\\.cc\$")
fi
count=$#
((count)) || count=$(grep -cE "\"file\": \"$top/(src|tests)/" "$build/compile_commands.json")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
run-clang-tidy -quiet -p "$build" -j "$(nproc)" "${regexes[@]}" >"$log" 2>&1 || status=$?
if ((status != 0)) || grep -qE '(warning|error):' "$log"; then
  grep -E -A3 '(warning|error):' "$log" | grep -v '^--$' >&2 || cat "$log" >&2
  echo "scripts/check-tidy.sh: clang-tidy found problems (see above)" >&2
  exit 1
fi
echo "check-tidy: $count translation units clean"
