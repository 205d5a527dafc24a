#!/usr/bin/env bash
# Link launcher for berthd (CMake's RULE_LAUNCH_LINK, see src/cmd/CMakeLists.txt):
# runs the link command CMake made with the shared libraries of gRPC,
# protobuf, abseil, upb, re2, c-ares and SQLite replaced by Debian's static
# archives of the same packages, in one --start-group at the end (they
# reference each other in cycles). gRPC's, protobuf's and abseil's CMake
# packages import only the shared libraries, hence this rewrite instead of a
# target property. A library without a static archive beside it stays shared;
# OpenSSL, zlib and the rest stay shared. docs/benchmarks.md has the figures.
set -euo pipefail
compiler="$1"
static_re='^(grpc\+\+|grpc|gpr|upb|address_sorting|protobuf|absl_.*|re2|cares|sqlite3)$'
args=() group=()
for a in "$@"; do
  name="" archive=""
  case "$a" in
    /*/lib*.so | /*/lib*.so.*)
      name="${a##*/lib}"; name="${name%%.so*}"; archive="${a%/*}/lib$name.a" ;;
    -l*)
      name="${a#-l}"; archive="$("$compiler" -print-file-name="lib$name.a")" ;;
  esac
  if [[ -n "$name" && "$name" =~ $static_re && -f "$archive" ]]; then
    group+=("$archive")
  else
    args+=("$a")
  fi
done
if ((${#group[@]} == 0)); then exec "${args[@]}"; fi
# The archives need what their shared libraries would have pulled in.
exec "${args[@]}" -Wl,--start-group "${group[@]}" -Wl,--end-group -lssl -lcrypto -lz -pthread
