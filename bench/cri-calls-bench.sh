#!/usr/bin/env bash
# The CRI calls a kubelet makes most, call by call, and the daemon's memory, Berth against
# Debian's containerd (CRI plugin, runc) in the same run, with the same client:
#   1. idle RSS of each daemon (started, busybox and pause images pulled, no pod yet);
#   2. heavy pulls: two large images (5 x 20 MB of random data in 50 files per layer, and
#      4 x 10 MB in 2000 files per layer), VmRSS and VmHWM right after, then VmRSS every second
#      for 10 s, then the images are removed;
#   3. `berth-bench calls`: CreateContainer, StartContainer, ContainerStatus, StopContainer(0),
#      RemoveContainer of one container at a time (host-network pod), then ListPodSandbox,
#      ListContainers, ContainerStatus, PodSandboxStatus and ListImages, back to back, with each
#      object count (pods and containers present; containers exited), latency per call and the
#      daemon's CPU (utime+stime) per call;
#   4. RSS after all that.
# Usage: bench/cri-calls-bench.sh [build-dir] [iterations] [calls] [object counts...]
#   defaults: ./build 20 200 100 1000. Run as root. Only 127.0.0.1 sees traffic.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
iterations="${2:-20}"
calls="${3:-200}"
shift $(($# < 3 ? $# : 3))
objects=("$@")
[ ${#objects[@]} -gt 0 ] || objects=(100 1000)
[ -x "$build/bin/berthctl" ] || { echo "missing $build/bin/berthctl: build it first" >&2; exit 2; }
bench_name=callsbench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"

echo "# $(date -u +%FT%TZ) $(nproc) cores; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg);" \
  "$iterations lifecycles, $calls calls per RPC, objects ${objects[*]};" \
  "berthd $("$bin/berthd" --version | cut -d' ' -f2), $(containerd --version | cut -d' ' -f1,3)" \
  "(runc $(runc --version | head -1 | cut -d' ' -f3))"
out="$work/results"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
pid_of() { if [ "$1" = berth ]; then echo "$berthd_pid"; else echo "$containerd_pid"; fi; }
ep_of() { if [ "$1" = berth ]; then echo "$berth_ep"; else echo "$containerd_ep"; fi; }

# --- 1. idle
sleep 5
for rt in berth containerd; do
  echo "$rt memory phase=idle rss_kb=$(rss "$(pid_of $rt)") hwm_kb=$(hwm "$(pid_of $rt)")" | tee -a "$out"
done

# --- 2. heavy pulls
"$bin/make_bench_image" --registry "$reg" --repository bench/big --tag 1 --layers 5 \
  --layer-bytes 20000000 --files-per-layer 50 --seed 2000 >/dev/null
"$bin/make_bench_image" --registry "$reg" --repository bench/manyfiles --tag 1 --layers 4 \
  --layer-bytes 10000000 --files-per-layer 2000 --seed 3000 >/dev/null
for rt in berth containerd; do
  pid=$(pid_of $rt)
  for img in bench/big:1 bench/manyfiles:1; do
    "$bench" pull -r "$(ep_of $rt)" --image "$reg/$img" -n 1 --label "$rt" >/dev/null
  done
  series=""
  for s in $(seq 1 10); do sleep 1; series="$series${series:+,}$(rss "$pid")"; done
  echo "$rt memory phase=after_pulls hwm_kb=$(hwm "$pid") rss_kb_each_second=[$series]" | tee -a "$out"
  for img in bench/big:1 bench/manyfiles:1; do
    "$bin/berthctl" --runtime-endpoint "$(ep_of $rt)" --timeout 300s rmi "$reg/$img" >/dev/null ||
      echo "# $rt: could not remove $img"
  done
done

# --- 3. calls
for rt in berth containerd; do
  "$bench" calls -r "$(ep_of $rt)" --image "$image" -n "$iterations" --calls "$calls" \
    --objects "${objects[@]}" --daemon-pid "$(pid_of $rt)" --name-prefix "bc-$rt" --label "$rt" |
    sed 's/ all_ms=.*//' | tee -a "$out" ||
    { echo "# $rt FAILED; last lines of its daemon log:"; tail -n 5 "$work/$rt"*.log; }
done

# --- 4. after
sleep 2
for rt in berth containerd; do
  echo "$rt memory phase=after_calls rss_kb=$(rss "$(pid_of $rt)") hwm_kb=$(hwm "$(pid_of $rt)")" | tee -a "$out"
done

echo "# summary: ratio = containerd / berth (above 1: Berth is faster, cheaper or smaller)"
awk '
  {
    rt = $1
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if ($2 == "calls") {
      key = f["rpc"] "@" f["objects"]
      med[rt, key] = f["median_ms"]; cpu[rt, key] = f["cpu_ms_per_call"]
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    } else if ($2 == "memory") {
      mem[rt, f["phase"]] = (f["phase"] == "after_pulls") ? f["hwm_kb"] : f["rss_kb"]
      if (f["phase"] == "after_pulls") { s = f["rss_kb_each_second"]; gsub(/[\[\]]/, "", s); last[rt] = s }
    }
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, "@")
      b = med["berth", k]; c = med["containerd", k]; bc = cpu["berth", k]; cc = cpu["containerd", k]
      printf "summary rpc=%s objects=%s berth_ms=%.3f containerd_ms=%.3f ratio=%.2f berth_cpu_ms=%.3f containerd_cpu_ms=%.3f cpu_ratio=%s\n", \
        p[1], p[2], b, c, (b > 0 ? c / b : 0), bc, cc, (bc > 0 ? sprintf("%.2f", cc / bc) : "-")
    }
    for (r = 1; r <= 2; r++) {
      rt = r == 1 ? "berth" : "containerd"
      printf "summary memory %s idle_kb=%d pulls_peak_kb=%d after_pulls_kb_each_second=[%s] after_calls_kb=%d\n", \
        rt, mem[rt, "idle"], mem[rt, "after_pulls"], last[rt], mem[rt, "after_calls"]
    }
  }' "$out"

# Where Berth's time goes: berthd's own per-RPC latency (rpc_end) and the phases of
# CreateContainer and RemoveContainer, medians; logged only with BERTH_BENCH_LOG_LEVEL=debug.
echo "# berthd server side, medians (BERTH_BENCH_LOG_LEVEL=debug)"
awk '
  /event=rpc_end/ {
    m = ""; t = ""
    for (i = 1; i <= NF; i++) { if ($i ~ /^method=/) m = substr($i, 8); if ($i ~ /^ms=/) t = substr($i, 4) }
    if (m != "" && t != "") { n[m]++; v[m, n[m]] = t + 0 }
  }
  /event=container_(create|remove)_timing/ {
    what = ($0 ~ /create_timing/) ? "CreateContainer." : "RemoveContainer."
    for (i = 1; i <= NF; i++) if ($i ~ /_ms=/) {
      split($i, kv, "="); m = what kv[1]; n[m]++; v[m, n[m]] = kv[2] + 0
    }
  }
  END {
    for (m in n) {
      k = n[m]; for (i = 1; i <= k; i++) a[i] = v[m, i]
      for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      med = k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
      printf "berthd rpc=%s calls=%d median_ms=%.3f\n", m, k, med
    }
  }' "$work/berthd.log" | sort
