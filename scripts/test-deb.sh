#!/usr/bin/env bash
# Installs a berth .deb into a fresh Debian 12 root (debootstrap, minbase) and
# starts berthd from it: `berthd doctor` must pass there, and crictl (or the
# package's berthctl) must drive the daemon through a pod's life.
# Usage: scripts/test-deb.sh BERTH_DEB   (as root, with network access to a
# Debian mirror; MIRROR overrides deb.debian.org, CRICTL names a crictl).
# Takes minutes (debootstrap and the package's dependencies): the test suite
# runs it only with BERTH_DEB_TEST=1.
set -euo pipefail

deb=$(realpath "$1")
mirror=${MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/berth-debroot.XXXXXX)
berthd_pid=""

cleanup() {
  if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
    kill "$berthd_pid" && wait "$berthd_pid" 2>/dev/null || true
  fi
  # Every mount under the root, deepest first (berthd's own pinned
  # namespaces included), then the tree.
  awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

echo "test-deb: debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
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
  /usr/bin/berth-bench /etc/berth/berth.toml /lib/systemd/system/berthd.service; do
  [[ -e $root$f ]] || { echo "test-deb: $f missing"; exit 1; }
done
[[ -d $root/etc/berth/certs.d ]] || { echo "test-deb: /etc/berth/certs.d missing"; exit 1; }
grep -qx 'KillMode=process' "$root/lib/systemd/system/berthd.service"
grep -qx 'Delegate=yes' "$root/lib/systemd/system/berthd.service"
grep -q '^/etc/berth/berth.toml$' "$root/var/lib/dpkg/info/berth.conffiles"
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
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
POD
pod=$("${ctl[@]}" runp "$pod_json")
"${ctl[@]}" pods | grep -q deb-test
"${ctl[@]}" stopp "$pod"
"${ctl[@]}" rmp "$pod"
echo "test-deb: the package installs, berthd doctor passes, and berthd runs a pod"
