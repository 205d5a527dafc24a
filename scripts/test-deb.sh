#!/usr/bin/env bash
# Installs a berth .deb into a fresh Debian 12 root (debootstrap, minbase) and
# starts berthd from it: `berthd doctor` must pass there, and crictl (or the
# package's berthctl) must drive the daemon through a pod's life.
# Usage: scripts/test-deb.sh BERTH_DEB   (as root, with network access to a
# Debian mirror; MIRROR overrides deb.debian.org, CRICTL names a crictl,
# MAKE_IMAGE names a checkout's build/bin/make_bench_image: with it a
# container runs too, from an image served by a registry on loopback).
# Takes minutes (debootstrap and the package's dependencies): the test suite
# runs it only with BERTH_DEB_TEST=1.
set -euo pipefail

deb=$(realpath "$1")
mirror=${MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/berth-debroot.XXXXXX)
berthd_pid=""
registry_pid=""

ctl=()

cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; fi
  # Pods and containers outlive berthd by design: after a failure half-way,
  # remove them through the daemon first, or their processes, monitors and
  # cgroups would be left behind.
  if [[ -n $berthd_pid ]] && ((${#ctl[@]})) && kill -0 "$berthd_pid" 2>/dev/null; then
    "${ctl[@]}" rmp -a -f >/dev/null 2>&1 || true
  fi
  if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
    kill "$berthd_pid" && wait "$berthd_pid" 2>/dev/null || true
  fi
  # Every mount under the root, deepest first (berthd's own pinned
  # namespaces included), then the tree.
  awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$root"
  rm -rf "$root.registry"
}
trap cleanup EXIT

echo "test-deb: debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
# The root must be a mount point of its own: runc makes "/" a recursive slave
# mount before pivot_root, which fails (EINVAL) when / in the chroot is only a
# directory of the host's root filesystem.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
mount -t tmpfs tmpfs "$root/run"
# No service starts inside the root; berthd is started by hand below.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/berth.deb"

echo "test-deb: apt-get install ./berth.deb"
chroot "$root" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends /tmp/berth.deb

# What the package must have installed.
for f in /usr/bin/berthd /usr/bin/berthctl /usr/bin/berth-monitor /usr/bin/berth-pause \
  /usr/bin/berth-bench /etc/berth/config.toml /lib/systemd/system/berthd.service; do
  [[ -e $root$f ]] || { echo "test-deb: $f missing"; exit 1; }
done
[[ -d $root/etc/berth/certs.d ]] || { echo "test-deb: /etc/berth/certs.d missing"; exit 1; }
grep -qx 'KillMode=process' "$root/lib/systemd/system/berthd.service"
grep -qx 'Delegate=yes' "$root/lib/systemd/system/berthd.service"
grep -q '^/etc/berth/config.toml$' "$root/var/lib/dpkg/info/berth.conffiles"
chroot "$root" man -w berthd >/dev/null 2>&1 || [[ -e $root/usr/share/man/man8/berthd.8.gz ]]
# The shipped configuration is the effective one.
diff <(chroot "$root" berthd config) <(chroot "$root" berthd --config /dev/null config)

echo "test-deb: berthd doctor in the new root"
chroot "$root" berthd doctor

chroot "$root" /usr/bin/berthd >"$root/tmp/berthd.log" 2>&1 &
berthd_pid=$!
sock="$root/run/berth/berth.sock"
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { cat "$root/tmp/berthd.log"; exit 1; }

crictl=${CRICTL:-$(command -v crictl || true)}
if [[ -n $crictl ]]; then
  ctl=("$crictl" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock")
  pod_json="$root/tmp/pod.json"
else
  ctl=(chroot "$root" berthctl)
  pod_json=/tmp/pod.json
fi
echo "test-deb: driving it with ${ctl[0]}"
"${ctl[@]}" version
"${ctl[@]}" info >"$root/tmp/info.json"
grep -q '"RuntimeReady"' "$root/tmp/info.json"
cat >"$root/tmp/pod.json" <<'POD'
{"metadata": {"name": "deb-test", "namespace": "default", "uid": "deb-test-uid", "attempt": 1},
 "log_directory": "/var/log/pods/deb-test",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
POD
pod=$("${ctl[@]}" runp "$pod_json")
"${ctl[@]}" pods | grep -q deb-test

if [[ -n ${MAKE_IMAGE:-} ]]; then
  # A container's whole life, from an image pulled from a registry on loopback
  # (the chroot shares the host's network namespace).
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$root.registry"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n' \
    "$root.registry/data" "$port" >"$root.registry/config.yml"
  docker-registry serve "$root.registry/config.yml" >"$root.registry/log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  "$MAKE_IMAGE" --registry "127.0.0.1:$port" --repository deb/busybox --tag test --layers 0 >/dev/null
  image="127.0.0.1:$port/deb/busybox:test"
  "${ctl[@]}" pull "$image"
  "${ctl[@]}" images | grep -q deb/busybox
  cat >"$root/tmp/ctr.json" <<CTR
{"metadata": {"name": "hello"}, "image": {"image": "$image"},
 "command": ["/bin/sh", "-c", "echo hello from the package; sleep 600"], "log_path": "hello.log"}
CTR
  ctr_json=$([[ -n $crictl ]] && echo "$root/tmp/ctr.json" || echo /tmp/ctr.json)
  ctr=$("${ctl[@]}" create "$pod" "$ctr_json" "$pod_json")
  "${ctl[@]}" start "$ctr"
  "${ctl[@]}" ps | grep -q hello
  [[ $("${ctl[@]}" exec -s "$ctr" echo exec-ok) == exec-ok ]]
  # The log file is inside the root, where only the chroot's own client finds it
  # (crictl reads log files itself, by the path berthd reports).
  for _ in $(seq 50); do
    chroot "$root" berthctl logs "$ctr" 2>/dev/null | grep -q 'hello from the package' && break
    sleep 0.1
  done
  chroot "$root" berthctl logs "$ctr" | grep -q 'hello from the package'
  "${ctl[@]}" stop -t 1 "$ctr"
  "${ctl[@]}" rm "$ctr"
  "${ctl[@]}" rmi "$image"
fi

"${ctl[@]}" stopp "$pod"
"${ctl[@]}" rmp "$pod"
echo "test-deb: the package installs, berthd doctor passes, and berthd runs a pod${MAKE_IMAGE:+ and a container}"
