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
bin="$build/bin"
for b in berthd berth-monitor berth-pause berth-bench make_bench_image make_pause_image; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: build it first" >&2; exit 2; }
done

work="$(mktemp -d /tmp/berth-stbench.XXXXXX)"
port=""
for p in $(seq 5200 5299); do
  if [ -z "$(ss -Hltn "sport = :$p")" ]; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port in 5200-5299" >&2; exit 2; }
reg="127.0.0.1:$port"
pids=()

# Kill what outlives its daemon (containerd's shims, berth-monitor) and what
# runs in its containers, when the command line names $work.
kill_leftovers() {
  local comm
  for root in "$work/berth-state/runtimes/runc" "$work/containerd-runc/k8s.io"; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  for d in /proc/[0-9]*; do
    comm="$(cat "$d/comm" 2>/dev/null)" || continue
    case "$comm" in containerd-shim | berth-monitor | berthd | containerd) ;; *) continue ;; esac
    if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF "$work/"; then
      kill -9 "${d#/proc/}" 2>/dev/null || true
    fi
  done
}

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  kill_leftovers
  sleep 0.5
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry with the benchmark image and containerd's sandbox (pause) image
mkdir -p "$work/registry" "$work/certs.d/$reg" "$work/certs.d/registry.k8s.io" "$work/cni"
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
    conf_dir = "$work/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
TOML

berth_cmd=("$bin/berthd" --socket "$work/berth.sock" --root "$work/berth-root"
  --state "$work/berth-state" --registry-config-dir "$work/certs.d" --cni-conf-dir "$work/cni"
  --cni-bin-dir /usr/lib/cni)
containerd_cmd=("$(command -v containerd)" --config "$work/containerd.toml")

# Pull the images once with each daemon running.
pull() {  # label endpoint log cmd...
  local label="$1" ep="$2" log="$3"
  shift 3
  "$@" >>"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do [ -S "${ep#unix://}" ] && break; sleep 0.1; done
  sleep 0.5
  "$bin/berth-bench" pull -r "$ep" --image "$image" -n 1 --label "$label" >/dev/null
  if [ "$label" = containerd ]; then
    "$bin/berth-bench" pull -r "$ep" --image registry.k8s.io/pause:3.6 -n 1 --label "$label" >/dev/null
  fi
  kill "$pid"
  wait "$pid" || true
}
pull berth "unix://$work/berth.sock" "$work/berthd.log" "${berth_cmd[@]}"
pull containerd "unix://$work/containerd.sock" "$work/containerd.log" "${containerd_cmd[@]}"

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
