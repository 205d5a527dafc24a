#!/usr/bin/env bash
# Streaming, Berth against Debian's containerd (CRI plugin, runc) in the same
# run, with the same client (berth-bench stream: the CRI Exec and PortForward
# RPCs, then SPDY, as crictl and the kubelet's clients use them):
#  - exec round trip: Exec RPC for `echo hi` + SPDY session until the exit
#    status, in a running container of a CNI pod;
#  - port-forward throughput: one HTTP GET of a file of random bytes from
#    busybox httpd on the pod's loopback, through a local port forwarded over
#    SPDY.
# Rounds alternate between the runtimes. Set-up and clean-up: bench/cri-bench-env.sh.
# Usage: bench/stream-bench.sh [build-dir] [exec-iterations] [transfers] [transfer-mib]
#   build-dir defaults to ./build (berthd berth-monitor berth-pause berth-bench
#   make_bench_image make_pause_image). Run as root.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
execs="${2:-20}"
transfers="${3:-3}"
mib="${4:-100}"
bench_name=streambench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"

echo "# $(date -u +%FT%TZ) $(nproc) cores; $(uname -r); image $image; $execs execs and" \
  "$transfers transfers of $mib MiB per round; berthd $("$bin/berthd" --version | cut -d' ' -f2)," \
  "$(containerd --version | cut -d' ' -f1,3) (runc $(runc --version | head -1 | cut -d' ' -f3))"
out="$work/results"
run() {  # runtime round
  local ep
  if [ "$1" = berth ]; then ep=$berth_ep; else ep=$containerd_ep; fi
  "$bench" stream -r "$ep" --image "$image" -n "$execs" --transfers "$transfers" \
    --transfer-mib "$mib" --pods-network cni --name-prefix "sb-$1-r$2" --label "$1(round$2)" |
    tee -a "$out" ||
    { echo "# $1 round $2 FAILED; last lines of its daemon log:"; tail -n 5 "$work/$1"*.log; }
}
for round in 1 2; do
  run berth "$round"
  run containerd "$round"
done

# Summary over both rounds: median of all samples; exec ratio = containerd / Berth
# (above 1: Berth is faster), throughput ratio = Berth / containerd (above 1: Berth moves more).
echo "# summary (both rounds)"
awk '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $2 == "stream" {
    rt = $1; sub(/\(.*/, "", rt)
    delete f
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    s = (f["phase"] == "exec_echo") ? f["all_ms"] : f["all_s"]; gsub(/[\[\]]/, "", s)
    key = rt SUBSEP f["phase"]
    samples[key] = (key in samples) ? samples[key] "," s : s
    if (f["bytes"] != "") bytes = f["bytes"]
  }
  END {
    b = median(samples["berth", "exec_echo"]); c = median(samples["containerd", "exec_echo"])
    printf "summary phase=exec_echo berth_median_ms=%.1f containerd_median_ms=%.1f ratio=%.2f\n", b, c, (b > 0 ? c / b : 0)
    b = median(samples["berth", "port_forward"]); c = median(samples["containerd", "port_forward"])
    mb = bytes / 1048576
    printf "summary phase=port_forward berth_median_s=%.3f berth_MiBps=%.1f containerd_median_s=%.3f containerd_MiBps=%.1f ratio=%.2f\n", b, (b > 0 ? mb / b : 0), c, (c > 0 ? mb / c : 0), (b > 0 ? c / b : 0)
  }' "$out"

# Where Berth's time goes: berthd's own per-RPC latency, median (rpc_end log lines, logged
# with BERTH_BENCH_LOG_LEVEL=debug).
echo "# berthd per-RPC medians (server side)"
awk '
  /event=rpc_end/ {
    m = ""; t = ""
    for (i = 1; i <= NF; i++) { if ($i ~ /^method=/) m = substr($i, 8); if ($i ~ /^ms=/) t = substr($i, 4) }
    if (m != "" && t != "") { n[m]++; v[m, n[m]] = t + 0 }
  }
  /event=exec_started/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^ms=/) { m = "exec: runtime exec (runc exec --detach)"; n[m]++; v[m, n[m]] = substr($i, 4) + 0 }
  }
  END {
    for (m in n) {
      k = n[m]; for (i = 1; i <= k; i++) a[i] = v[m, i]
      for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      med = k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
      printf "berthd rpc=%s calls=%d median_ms=%.1f\n", m, k, med
    }
  }' "$work/berthd.log" | sort
