# Shared set-up of the benchmarks that compare Berth with Debian's containerd
# (CRI plugin, runc) in one run: sourced by bench/lifecycle-bench.sh,
# bench/stream-bench.sh, bench/cri-calls-bench.sh, bench/exec-bench.sh,
# bench/stats-bench.sh and bench/startup-bench.sh after they set `build` (a
# build directory) and
# `bench_name` (temp dir prefix). It starts one loopback registry with the
# busybox bench image and containerd's sandbox (pause) image, berthd and
# containerd with their own CNI bridge networks (bbench0, bbench1), pulls the
# image into both, and on exit removes everything it made. Afterwards these are
# set: work, image, bench (berth-bench), berth_ep, containerd_ep, berthd_pid,
# containerd_pid, berth_cmd and containerd_cmd (each daemon's command line, as
# arrays), and start_berthd [extra flags...] starts berthd again (appending to
# $work/berthd.log) once the caller stopped it. Needs root; only 127.0.0.1 and the pods' own addresses see
# traffic. containerd runs with restrict_oom_score_adj = true (these hosts lack
# CAP_SYS_RESOURCE) and its streaming server on a free loopback port.
bin="$build/bin"
for b in berthd berth-monitor berth-pause berth-bench make_bench_image make_pause_image; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b: build it first" >&2; exit 2; }
done
for l in bbench0 bbench1; do
  if ip link show "$l" >/dev/null 2>&1; then echo "link $l exists: another run?" >&2; exit 2; fi
done

work="$(mktemp -d "/tmp/berth-${bench_name:-bench}.XXXXXX")"
port=""
for p in $(seq 5100 5199); do
  if [ -z "$(ss -Hltn "sport = :$p")" ]; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port in 5100-5199" >&2; exit 2; }
reg="127.0.0.1:$port"
stream_port=""
for p in $(seq 10110 10199); do
  if [ -z "$(ss -Hltn "sport = :$p")" ]; then stream_port=$p; break; fi
done
[ -n "$stream_port" ] || { echo "no free port in 10110-10199" >&2; exit 2; }
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
    case "$comm" in containerd-shim | berth-monitor | berthd | containerd) ;; *) continue ;; esac
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
berth_cmd=("$bin/berthd" --socket "$work/berth.sock" --root "$work/berth-root"
  --state "$work/berth-state" --registry-config-dir "$work/certs.d" --cni-conf-dir "$work/cni-berth"
  --cni-bin-dir /usr/lib/cni --log-level "${BERTH_BENCH_LOG_LEVEL:-info}")
start_berthd() {  # extra berthd flags...; returns once berthd logged event=ready
  local ready
  ready=$(grep -c 'event=ready' "$work/berthd.log" 2>/dev/null || true)
  "${berth_cmd[@]}" "$@" >>"$work/berthd.log" 2>&1 &
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
  stream_server_address = "127.0.0.1"
  stream_server_port = "$stream_port"
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
containerd_cmd=("$(command -v containerd)" --config "$work/containerd.toml")
"${containerd_cmd[@]}" >"$work/containerd.log" 2>&1 &
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
