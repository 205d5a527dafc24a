#!/usr/bin/env bash
# ExecSync cost in one run: Berth's native exec path (runtime.exec_mode =
# "native"), Berth with `runc exec` (exec_mode = "runc", a second berthd) and
# Debian's containerd (CRI plugin, runc), the same client (berth-bench exec)
# on each: latency per ExecSync `echo hi` and the CPU time per call of the
# daemon, its per-pod helpers (containerd-shim-runc-v2, berth-monitor) and
# everything they start and reap (runc, the exec'd process). Rounds alternate
# between the runtimes. Pods are in the node's network.
# Usage: bench/exec-bench.sh [build-dir] [iterations] [rounds]
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$top/build}" && pwd)"
iterations="${2:-200}"
rounds="${3:-3}"
bench_name=exbench
# shellcheck source=bench/cri-bench-env.sh
source "$top/bench/cri-bench-env.sh"

# The second berthd, with runc exec.
runc_root="$work/berth-runc-state/runtimes/runc"
cleanup_runc_berthd() {
  set +e
  for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
    runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1
  done
  cleanup
}
trap cleanup_runc_berthd EXIT
"$bin/berthd" --socket "$work/berth-runc.sock" --root "$work/berth-runc-root" \
  --state "$work/berth-runc-state" --registry-config-dir "$work/certs.d" \
  --cni-conf-dir "$work/cni-berth" --cni-bin-dir /usr/lib/cni --exec-mode runc \
  --log-level "${BERTH_BENCH_LOG_LEVEL:-info}" >"$work/berthd-runc.log" 2>&1 &
berthd_runc_pid=$!
pids+=("$berthd_runc_pid")
for _ in $(seq 1 100); do [ -S "$work/berth-runc.sock" ] && break; sleep 0.1; done
sleep 1
berth_runc_ep="unix://$work/berth-runc.sock"
"$bench" pull -r "$berth_runc_ep" --image "$image" -n 1 --label berth-runc >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores; $(uname -r); image $image; $iterations execs x" \
  "$rounds rounds; berthd $("$bin/berthd" --version | cut -d' ' -f2)," \
  "$(containerd --version | cut -d' ' -f1,3) (runc $(runc --version | head -1 | cut -d' ' -f3))"
out="$work/results"
run() {  # label endpoint daemon-pid helper round
  "$bench" exec -r "$2" --image "$image" -n "$iterations" --daemon-pid "$3" --helper-name "$4" \
    --name-prefix "bx-$1-r$5" --label "$1(round$5)" | tee -a "$out"
}
for round in $(seq 1 "$rounds"); do
  run berth-native "$berth_ep" "$berthd_pid" berth-monitor "$round"
  run berth-runc "$berth_runc_ep" "$berthd_runc_pid" berth-monitor "$round"
  run containerd "$containerd_ep" "$containerd_pid" containerd-shim-runc-v2 "$round"
done

# Summary: median latency over all samples, CPU per call over all calls;
# ratio = runtime / containerd (below 1: cheaper than containerd).
echo "# summary (all rounds)"
awk '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $2 == "exec" {
    rt = $1; sub(/\(.*/, "", rt)
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    s = f["all_ms"]; gsub(/[\[\]]/, "", s)
    samples[rt] = (rt in samples) ? samples[rt] "," s : s
    cpu[rt] += f["cpu_ms_per_call"] * f["runs"]; calls[rt] += f["runs"]
    if (!(rt in seen)) { seen[rt] = 1; order[++n] = rt }
  }
  END {
    for (i = 1; i <= n; i++) { rt = order[i]; lat[rt] = median(samples[rt]); c[rt] = cpu[rt] / calls[rt] }
    for (i = 1; i <= n; i++) {
      rt = order[i]
      printf "%-13s exec_sync median_ms=%.2f cpu_ms_per_call=%.2f", rt, lat[rt], c[rt]
      if ("containerd" in lat && rt != "containerd")
        printf " latency_vs_containerd=%.2f cpu_vs_containerd=%.2f", lat[rt] / lat["containerd"], c[rt] / c["containerd"]
      printf "\n"
    }
  }' "$out"
