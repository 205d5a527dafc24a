#!/usr/bin/env bash
# Fails when clang-tidy (.clang-tidy) finds anything in our C++ (docs/testing.md):
# every translation unit of src/ and tests/ in build/compile_commands.json (the
# generated protobuf code in build/gen is not ours), and the headers they
# include from src/ and tests/. Needs a built build/ (scripts/test.sh makes
# one): generated headers, and the compiler's dependency files for --changed.
#
#   scripts/check-tidy.sh            every translation unit (40 to 60 minutes on 2 cores)
#   scripts/check-tidy.sh FILE...    only these translation units
#   scripts/check-tidy.sh --changed  (CI) only the translation units that a change since the
#                                    commit named in scripts/tidy-baseline can affect: the
#                                    source or any header it includes (from build/'s
#                                    dependency files) changed; every unit when .clang-tidy
#                                    changed or the baseline commit is not in the history
#
# clang-tidy 14 spends most of its time matching its checks against the
# gRPC/protobuf/abseil headers every unit includes, up to a CPU-minute a unit
# (docs/testing.md); the whole tree does not fit CI's time on 2 cores. A full run that is
# clean is recorded by writing its commit into scripts/tidy-baseline (see
# docs/testing.md), which keeps CI's --changed runs small.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="${BERTH_TIDY_BUILD:-$top/build}"
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "scripts/check-tidy.sh: no $build/compile_commands.json; run scripts/test.sh first" >&2
  exit 2
fi

# The translation units to check, one absolute path a line.
units="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$units" "$log"' EXIT
if [[ "${1:-}" == --changed ]]; then
  baseline="$(sed -n 's/^\([0-9a-f]\{40\}\).*/\1/p' "$top/scripts/tidy-baseline" | head -1)"
  all=0
  if [[ -z "$baseline" ]] || ! git -C "$top" cat-file -e "$baseline^{commit}" 2>/dev/null; then
    echo "check-tidy: baseline commit ${baseline:-(none)} not in this clone: checking everything"
    all=1
  fi
  changed="$(mktemp)"
  trap 'rm -f "$units" "$log" "$changed"' EXIT
  if ((!all)); then
    # Committed changes since the baseline and whatever the work tree changed on top.
    { git -C "$top" diff --name-only "$baseline" -- && git -C "$top" ls-files --others --exclude-standard; } |
      sort -u | sed "s|^|$top/|" >"$changed"
    grep -qx "$top/.clang-tidy" "$changed" && all=1
  fi
  python3 - "$top" "$build" "$changed" "$all" >"$units" <<'EOF'
import json, os, re, sys
top, build, changed_file, check_all = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
changed = {os.path.realpath(l.strip()) for l in open(changed_file) if l.strip()}
# A changed .proto changes the generated headers in build/gen.
proto_changed = any(c.startswith(os.path.join(top, "proto") + os.sep) for c in changed)
gen = os.path.realpath(os.path.join(build, "gen")) + os.sep
ours = re.compile("^" + re.escape(top) + "/(src|tests)/.*\\.cc$")
for entry in json.load(open(os.path.join(build, "compile_commands.json"))):
    src = entry["file"]
    if not ours.match(src):
        continue
    if check_all or os.path.realpath(src) in changed:
        print(src)
        continue
    out = re.search(r" -o (\S+)", entry["command"])
    depfile = os.path.join(entry["directory"], out.group(1) + ".d") if out else ""
    if not os.path.exists(depfile):
        print(src)  # never built: cannot tell what it includes
        continue
    deps = open(depfile).read().replace("\\\n", " ").split(":", 1)[-1].split()
    for d in deps:
        p = os.path.realpath(os.path.join(entry["directory"], d))
        if p in changed or (proto_changed and p.startswith(gen)):
            print(src)
            break
EOF
elif (($#)); then
  for f in "$@"; do realpath "$f"; done >"$units"
else
  grep -oE "\"file\": \"$top/(src|tests)/[^\"]*\\.cc\"" "$build/compile_commands.json" |
    sed 's/^"file": "//; s/"$//' | sort -u >"$units"
fi

count=$(wc -l <"$units")
if ((count == 0)); then
  echo "check-tidy: no translation unit changed since the baseline; nothing to check"
  exit 0
fi
# run-clang-tidy takes regexes on the paths of the database.
mapfile -t regexes < <(sed 's/[.+]/\\&/g; s/^/^/; s/$/$/' "$units")
status=0
run-clang-tidy-22 -clang-tidy-binary clang-tidy-22 -quiet -p "$build" -j "$(nproc)" "${regexes[@]}" >"$log" 2>&1 || status=$?
if ((status != 0)) || grep -qE '(warning|error):' "$log"; then
  grep -E -A3 '(warning|error):' "$log" | grep -v '^--$' >&2 || cat "$log" >&2
  echo "scripts/check-tidy.sh: clang-tidy found problems (see above)" >&2
  exit 1
fi
echo "check-tidy: $count translation units clean"
