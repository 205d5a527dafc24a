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
bin="$build/bin"
for b in berthd berth-monitor berth-pause berth-bench make_bench_image make_pause_image; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: build it first" >&2; exit 2; }
done
for l in bbench0 bbench1; do
  if ip link show "$l" >/dev/null 2>&1; then echo "link $l exists: another run?" >&2; exit 2; fi
done

work="$(mktemp -d /tmp/berth-statsbench.XXXXXX)"
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
  for r in berth berth-nocache containerd; do
    for d in /sys/fs/cgroup/*/berth-statsbench-$r /sys/fs/cgroup/berth-statsbench-$r; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  done
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

# --- the daemons
start_berthd() {  # extra berthd flags...
  local ready
  ready=$(grep -c 'event=ready' "$work/berthd.log" 2>/dev/null || true)
  "$bin/berthd" --socket "$work/berth.sock" --root "$work/berth-root" --state "$work/berth-state" \
    --registry-config-dir "$work/certs.d" --cni-conf-dir "$work/cni-berth" \
    --cni-bin-dir /usr/lib/cni --log-level "${BERTH_BENCH_LOG_LEVEL:-info}" "$@" \
    >>"$work/berthd.log" 2>&1 &
  berthd_pid=$!
  pids+=("$berthd_pid")
  for _ in $(seq 1 200); do
    [ "$(grep -c 'event=ready' "$work/berthd.log" 2>/dev/null || true)" -gt "${ready:-0}" ] && break
    sleep 0.1
  done
}
start_berthd

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
for _ in $(seq 1 100); do [ -S "$work/containerd.sock" ] && break; sleep 0.1; done
sleep 1

bench="$bin/berth-bench"
berth_ep="unix://$work/berth.sock"
containerd_ep="unix://$work/containerd.sock"
"$bench" pull -r "$berth_ep" --image "$image" -n 1 --label berth >/dev/null
"$bench" pull -r "$containerd_ep" --image "$image" -n 1 --label containerd >/dev/null
"$bench" pull -r "$containerd_ep" --image registry.k8s.io/pause:3.6 -n 1 --label containerd >/dev/null

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
