#!/usr/bin/env bash
# Pull+unpack throughput, Berth against Debian's containerd in the same run:
# one loopback registry, one image (busybox + 5 x 20 MB layers, gzip), the same
# CRI client (berth-bench) timing RemoveImage+PullImage cycles on each runtime.
# Usage: bench/pull-bench.sh [runs]   (needs a build in ./build; run as root)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
build="$top/build"
work="$(mktemp -d /tmp/berth-pullbench.XXXXXX)"
port=5055
reg="127.0.0.1:$port"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # containerd leaves its snapshot mounts only while containers run; none do here.
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/registry" "$work/certs.d/$reg"
cat > "$work/registry/config.yml" <<YML
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
"$build/bin/make_bench_image" --registry "$reg" --repository bench/pull --tag 100m
image="$reg/bench/pull:100m"
cat > "$work/certs.d/$reg/hosts.toml" <<TOML
server = "http://$reg"
[host."http://$reg"]
  capabilities = ["pull", "resolve"]
TOML

"$build/bin/berthd" --socket "$work/berth.sock" --root "$work/berth-root" --state "$work/berth-state" \
  --registry-config-dir "$work/certs.d" --cni-conf-dir "$work/cni" >"$work/berthd.log" 2>&1 &
pids+=($!)

cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd-root"
state = "$work/containerd-state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
TOML
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$work/berth.sock" ] && [ -S "$work/containerd.sock" ] && break; sleep 0.1; done
sleep 1

echo "# $(date -u +%FT%TZ) $(nproc) cores; image $image; $runs runs each, alternating"
bench="$build/bin/berth-bench"
# Alternate the runtimes so that neither benefits from a warmer page cache.
for round in 1 2; do
  "$bench" pull -r "unix://$work/berth.sock" --image "$image" -n "$runs" --label "berth(round$round)"
  "$bench" pull -r "unix://$work/containerd.sock" --image "$image" -n "$runs" --label "containerd(round$round)"
done
