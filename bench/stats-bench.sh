#!/usr/bin/env bash
# Cost of the CRI stats RPCs with many running containers, Berth against
# Debian's containerd (CRI plugin, runc) in the same run: one loopback
# registry, one busybox image, the same CRI client (berth-bench stats) on each
# runtime, CNI bridge networking (bbench0 for Berth, bbench1 for containerd).
# For each runtime: N pods with one running container each (cgroup parent
# /berth-statsbench-<runtime>/pod<n>, as a kubelet gives), then back-to-back
# ListContainerStats and ListPodSandboxStats calls (latency, and the daemon's
# and its per-container helpers' utime+stime per call), then a minute of the
# kubelet's polling pattern (relist every 1 s, stats every 10 s). Berth runs
# twice: with its default sample reuse (500 ms) and with none
# (--stats-min-sample-interval-ms 0), so every call reads every cgroup.
# Usage: bench/stats-bench.sh [build-dir] [containers] [calls] [poll-seconds]
#   build-dir defaults to ./build and needs berthd berth-monitor berth-pause
#   berth-bench make_bench_image make_pause_image. Run as root. Only 127.0.0.1
#   (and the pods' own addresses) ever see traffic.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
containers="${2:-100}"
calls="${3:-50}"
poll="${4:-60}"
bench_name=statsbench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"

echo "# $(date -u +%FT%TZ) $(nproc) cores; $(uname -r); image $image; $containers containers," \
  "$calls calls per RPC, $poll s of polling; berthd $("$bin/berthd" --version | cut -d' ' -f2)," \
  "$(containerd --version | cut -d' ' -f1,3) (runc $(runc --version | head -1 | cut -d' ' -f3))"
out="$work/results"
run() {  # label endpoint daemon-pid helper
  mkdir -p "$work/logs-$1"
  "$bench" stats -r "$2" --image "$image" --containers "$containers" --calls "$calls" \
    --poll-seconds "$poll" --pods-network cni --cgroup-root "/berth-statsbench-$1" \
    --daemon-pid "$3" --helper-name "$4" --log-dir "$work/logs-$1" --name-prefix "bs-$1" \
    --label "$1" | tee -a "$out" ||
    { echo "# $1 FAILED; last lines of the daemon logs:"; tail -n 5 "$work/"*.log; }
}
run berth "$berth_ep" "$berthd_pid" berth-monitor
run containerd "$containerd_ep" "$containerd_pid" containerd-shim-runc-v2
# Berth again, reading every cgroup on every call.
kill "$berthd_pid"; wait "$berthd_pid" || true
rm -f "$work/berth.sock"
start_berthd --stats-min-sample-interval-ms 0
run berth-nocache "$berth_ep" "$berthd_pid" berth-monitor

# ratio = containerd / berth (above 1: Berth is cheaper or faster).
echo "# summary"
awk '
  $2 == "stats" && $3 ~ /^rpc=/ {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    rt = $1; rpc = f["rpc"]
    lat[rt, rpc] = f["median_ms"]; cpu[rt, rpc] = f["daemon_cpu_ms_per_call"]
    all[rt, rpc] = f["daemon_cpu_ms_per_call"] + f["helpers_cpu_ms_per_call"]
    if (!(rpc in seen)) { seen[rpc] = 1; rpcs[++n] = rpc }
  }
  $2 == "stats" && $3 ~ /^poll/ {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    poll[$1] = f["daemon_cpu_ms"]; pollh[$1] = f["helpers_cpu_ms"]
  }
  END {
    for (i = 1; i <= n; i++) {
      r = rpcs[i]
      for (b = 1; b <= 2; b++) {
        bl = b == 1 ? "berth" : "berth-nocache"
        printf "summary %s vs containerd rpc=%s latency_ms=%s/%s (ratio %.1f) daemon_cpu_ms_per_call=%s/%s (ratio %.1f) with_helpers=%.2f/%.2f (ratio %.1f)\n", \
          bl, r, lat[bl, r], lat["containerd", r], (lat[bl, r] > 0 ? lat["containerd", r] / lat[bl, r] : 0), \
          cpu[bl, r], cpu["containerd", r], (cpu[bl, r] > 0 ? cpu["containerd", r] / cpu[bl, r] : 0), \
          all[bl, r], all["containerd", r], (all[bl, r] > 0 ? all["containerd", r] / all[bl, r] : 0)
      }
    }
    for (rt in poll) printf "summary poll runtime=%s daemon_cpu_ms_per_minute=%s helpers_cpu_ms=%s\n", rt, poll[rt], pollh[rt]
  }' "$out"
