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
bin="$build/bin"
for b in berthd berth-monitor berth-pause berth-bench make_bench_image make_pause_image; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: build it first" >&2; exit 2; }
done
for l in bbench0 bbench1; do
  if ip link show "$l" >/dev/null 2>&1; then echo "link $l exists: another run?" >&2; exit 2; fi
done

work="$(mktemp -d /tmp/berth-lcbench.XXXXXX)"
port=""
for p in $(seq 5100 5199); do
  if [ -z "$(ss -Hltn "sport = :$p")" ]; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port in 5100-5199" >&2; exit 2; }
reg="127.0.0.1:$port"
pids=()

# Kill what outlives its daemon (containerd's shims, berth-monitor) and
# everything running in its containers, when the command line names $work.
kill_leftovers() {
  local d comm
  for root in "$work/berth-state/runtimes/runc" "$work/berth-state/runc" "$work/containerd-runc/k8s.io"; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  for d in /proc/[0-9]*; do
    comm="$(cat "$d/comm" 2>/dev/null)" || continue
    case "$comm" in containerd-shim | berth-monitor) ;; *) continue ;; esac
    if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF "$work/"; then
      kill -9 "${d#/proc/}" 2>/dev/null || true
    fi
  done
}

# Rules the portmap plugin tagged with our network names, and their chains.
remove_iptables() {
  command -v iptables-save >/dev/null || return 0
  local rules chains rule chain
  rules="$(iptables-save -t nat 2>/dev/null | grep -E '^-A .*bbench-(berth|containerd)' || true)"
  [ -n "$rules" ] || return 0
  chains="$(grep -oE -- '-j CNI-DN-[0-9a-f]+' <<<"$rules" | cut -d' ' -f2 | sort -u)"
  while read -r rule; do eval "iptables -t nat -D ${rule#-A }" || true; done <<<"$rules"
  for chain in $chains; do iptables -t nat -F "$chain"; iptables -t nat -X "$chain"; done
}

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  kill_leftovers
  sleep 0.5
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  for l in bbench0 bbench1; do ip link del "$l" 2>/dev/null; done
  remove_iptables
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry with the benchmark image and containerd's sandbox (pause) image
mkdir -p "$work/registry" "$work/certs.d/$reg" "$work/certs.d/registry.k8s.io"
cat >"$work/registry/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: $reg
log:
  level: error
YML
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
"$bin/make_bench_image" --registry "$reg" --repository bench/busybox --tag 1 --layers 0 >/dev/null
"$bin/make_pause_image" --registry "$reg" --repository pause --tag 3.6 \
  --pause-binary "$bin/berth-pause" >/dev/null
image="$reg/bench/busybox:1"
for host in "$reg" registry.k8s.io; do
  cat >"$work/certs.d/$host/hosts.toml" <<TOML
server = "http://$reg"
[host."http://$reg"]
  capabilities = ["pull", "resolve"]
TOML
done

# --- one CNI network per runtime: own bridge, subnet and host-local data dir
write_conflist() {  # runtime bridge subnet
  mkdir -p "$work/cni-$1"
  cat >"$work/cni-$1/10-bbench.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "bbench-$1",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$2",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$3"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$work/cni-data-$1"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}
write_conflist berth bbench0 10.77.0.0/16
write_conflist containerd bbench1 10.78.0.0/16

# --- the two daemons
"$bin/berthd" --socket "$work/berth.sock" --root "$work/berth-root" --state "$work/berth-state" \
  --registry-config-dir "$work/certs.d" --cni-conf-dir "$work/cni-berth" \
  --cni-bin-dir /usr/lib/cni --log-level "${BERTH_BENCH_LOG_LEVEL:-info}" >"$work/berthd.log" 2>&1 &
berthd_pid=$!
pids+=("$berthd_pid")

cat >"$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd-root"
state = "$work/containerd-state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "registry.k8s.io/pause:3.6"
  netns_mounts_under_state = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$work/containerd-runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni-containerd"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
TOML
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
pids+=("$containerd_pid")
for _ in $(seq 1 100); do
  [ -S "$work/berth.sock" ] && [ -S "$work/containerd.sock" ] && break
  sleep 0.1
done
sleep 1

bench="$bin/berth-bench"
berth_ep="unix://$work/berth.sock"
containerd_ep="unix://$work/containerd.sock"
"$bench" pull -r "$berth_ep" --image "$image" -n 1 --label berth >/dev/null
"$bench" pull -r "$containerd_ep" --image "$image" -n 1 --label containerd >/dev/null
"$bench" pull -r "$containerd_ep" --image registry.k8s.io/pause:3.6 -n 1 --label containerd >/dev/null

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
