#!/usr/bin/env bash
# Pod and container lifecycle latency, and the memory of running pods, Berth
# against Debian's containerd (CRI plugin, runc) in the same run: one loopback
# registry, one busybox image, the same CRI client (berth-bench lifecycle) on
# each runtime, CNI bridge networking (bbench0 for Berth, bbench1 for
# containerd), rounds alternating between the runtimes.
# Usage: bench/lifecycle-bench.sh [build-dir] [iterations] [memory-pods]
#   build-dir defaults to ./build and needs berthd berth-monitor berth-pause
#   berth-bench make_bench_image make_pause_image. Run as root. Only 127.0.0.1
#   (and the pods' own addresses) ever see traffic.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
iterations="${2:-10}"
memory_pods="${3:-10}"
bench_name=lcbench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"

echo "# $(date -u +%FT%TZ) $(nproc) cores; $(uname -r); image $image; $iterations iterations" \
  "and $memory_pods memory pods per round; berthd $("$bin/berthd" --version | cut -d' ' -f2)," \
  "$(containerd --version | cut -d' ' -f1,3) (runc $(runc --version | head -1 | cut -d' ' -f3))"
out="$work/results"
run() {  # runtime round
  local ep pid helper
  if [ "$1" = berth ]; then ep=$berth_ep pid=$berthd_pid helper=berth-monitor
  else ep=$containerd_ep pid=$containerd_pid helper=containerd-shim-runc-v2; fi
  mkdir -p "$work/logs-$1"
  "$bench" lifecycle -r "$ep" --image "$image" -n "$iterations" --pods-network cni \
    --memory-pods "$memory_pods" --daemon-pid "$pid" --helper-name "$helper" \
    --log-dir "$work/logs-$1" --name-prefix "bb-$1-r$2" --label "$1(round$2)" | tee -a "$out" ||
    { echo "# $1 round $2 FAILED; last lines of its daemon log:"; tail -n 5 "$work/$1"*.log; }
}
# Alternate the runtimes so that neither benefits from warmer caches.
for round in 1 2; do
  run berth "$round"
  run containerd "$round"
done

# Summary over both rounds: median of all samples per phase, mean of the memory
# figures; ratio = containerd / berth (above 1: Berth is faster or smaller).
echo "# summary (both rounds)"
awk '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    rt = $1; sub(/\(.*/, "", rt)
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if ($2 == "lifecycle") {
      s = f["all_ms"]; gsub(/[\[\]]/, "", s)
      key = rt SUBSEP f["phase"]
      if (key in samples) s = samples[key] "," s
      samples[key] = s
      if (!(f["phase"] in seen)) { seen[f["phase"]] = 1; order[++np] = f["phase"] }
    } else if ($2 == "memory") {
      mem[rt, "daemon"] += f["daemon_rss_kb"]; mem[rt, "helpers"] += f["helpers_rss_kb"]
      mem[rt, "count"] += f["helpers"]; mem[rt, "rounds"]++
    }
  }
  END {
    for (i = 1; i <= np; i++) {
      p = order[i]; b = median(samples["berth", p]); c = median(samples["containerd", p])
      printf "summary phase=%s berth_median_ms=%.1f containerd_median_ms=%.1f ratio=%.2f\n", p, b, c, (b > 0 ? c / b : 0)
    }
    if (!mem["berth", "rounds"] || !mem["containerd", "rounds"]) exit
    bd = mem["berth", "daemon"] / mem["berth", "rounds"]; cd = mem["containerd", "daemon"] / mem["containerd", "rounds"]
    bh = mem["berth", "count"] ? mem["berth", "helpers"] / mem["berth", "count"] : 0
    ch = mem["containerd", "count"] ? mem["containerd", "helpers"] / mem["containerd", "count"] : 0
    printf "summary memory daemon_rss_kb berth=%d containerd=%d ratio=%.2f\n", bd, cd, (bd > 0 ? cd / bd : 0)
    printf "summary memory helper_avg_kb berth=%d containerd=%d ratio=%.2f\n", bh, ch, (bh > 0 ? ch / bh : 0)
  }' "$out"

# Where Berth's time goes: berthd's own per-RPC latency, median (rpc_end log lines, logged
# for successful calls only with BERTH_BENCH_LOG_LEVEL=debug).
echo "# berthd per-RPC medians (server side)"
awk '
  /event=rpc_end/ {
    m = ""; t = ""
    for (i = 1; i <= NF; i++) { if ($i ~ /^method=/) m = substr($i, 8); if ($i ~ /^ms=/) t = substr($i, 4) }
    if (m != "" && t != "") { n[m]++; v[m, n[m]] = t + 0 }
  }
  /event=container_create_timing/ {
    for (i = 1; i <= NF; i++) if ($i ~ /_ms=/) {
      split($i, kv, "="); m = "CreateContainer." kv[1]; n[m]++; v[m, n[m]] = kv[2] + 0
    }
  }
  END {
    for (m in n) {
      k = n[m]; for (i = 1; i <= k; i++) a[i] = v[m, i]
      for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      med = k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
      printf "berthd rpc=%s calls=%d median_ms=%.1f\n", m, k, med
    }
  }' "$work/berthd.log" | sort
