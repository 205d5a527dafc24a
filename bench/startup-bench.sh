#!/usr/bin/env bash
# How soon a restarted runtime answers again, Berth against Debian's containerd
# (CRI plugin, runc) in the same run: `berth-bench startup` starts each daemon,
# keeps a few running pods, then kills (SIGKILL: a crash) or stops (SIGTERM: an
# upgrade) and restarts it several times, timing from the spawn to the first
# successful Version (what `crictl version` polling sees) and to Status
# reporting RuntimeReady. Rounds alternate between the runtimes.
# Usage: bench/startup-bench.sh [build-dir] [runs] [kept-pods]
#   build-dir defaults to ./build and needs berthd berth-monitor berth-pause
#   berth-bench make_bench_image make_pause_image. Run as root. Only 127.0.0.1
#   ever sees traffic (pods run in the node's network).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
runs="${2:-10}"
keep="${3:-3}"
bench_name=stbench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"
# berth-bench startup starts and restarts each daemon itself, from these
# command lines; the pods it keeps run in the node's network.
for p in "$berthd_pid" "$containerd_pid"; do kill "$p"; wait "$p" || true; done

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(uname -r);" \
  "$runs restarts per round, $keep running pods kept; berthd" \
  "$("$bin/berthd" --version | cut -d' ' -f2), $(containerd --version | cut -d' ' -f1,3)"
for round in 1 2; do
  for after in kill stop; do
    "$bin/berth-bench" startup -r "unix://$work/berth.sock" -n "$runs" --after "$after" \
      --keep-pods "$keep" --image "$image" --log "$work/berthd.log" --label "berth(round$round)" \
      -- "${berth_cmd[@]}"
    "$bin/berth-bench" startup -r "unix://$work/containerd.sock" -n "$runs" --after "$after" \
      --keep-pods "$keep" --image "$image" --log "$work/containerd.log" \
      --label "containerd(round$round)" -- "${containerd_cmd[@]}"
  done
done
