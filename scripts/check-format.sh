#!/usr/bin/env bash
# Fails when a C++ file of ours is not formatted with the repository's
# .clang-format (docs/testing.md). Checks every *.cc and *.h tracked by git
# under src/ and tests/ (generated protobuf code lives in the build tree).
# To fix: clang-format -i FILE... (or this script with --fix).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
fix=0
[[ "${1:-}" == --fix ]] && fix=1
mapfile -t files < <(git ls-files -- 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h')
if ((fix)); then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if ((${#bad[@]})); then
  echo "scripts/check-format.sh: ${#bad[@]} file(s) differ from .clang-format" \
    "(fix: clang-format -i FILE, or scripts/check-format.sh --fix):" >&2
  for f in "${bad[@]}"; do
    echo "  $f" >&2
    clang-format "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - | head -20 >&2 || true
  done
  exit 1
fi
echo "check-format: ${#files[@]} files clean"
