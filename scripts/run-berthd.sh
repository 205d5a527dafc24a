#!/usr/bin/env bash
# Installs what Berth needs, builds it and starts berthd on its embedded
# defaults (socket /run/berth/berth.sock), then asks it for its version and
# status with berthctl. berthd keeps running in the background; its log is
# /var/log/berthd.log. Stop it with: kill $(cat /run/berth/berthd.pid)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
bash "$top/scripts/setup.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$top/build" -j"$(nproc)" berthd berthctl
mkdir -p /run/berth
if [ -f /run/berth/berthd.pid ] && kill -0 "$(cat /run/berth/berthd.pid)" 2>/dev/null; then
  echo "berthd already running (pid $(cat /run/berth/berthd.pid)); restarting it"
  kill "$(cat /run/berth/berthd.pid)"
  sleep 1
fi
nohup "$top/build/bin/berthd" >>/var/log/berthd.log 2>&1 &
echo $! > /run/berth/berthd.pid
for _ in $(seq 1 50); do
  [ -S /run/berth/berth.sock ] && "$top/build/bin/berthctl" version >/dev/null 2>&1 && break
  sleep 0.1
done
"$top/build/bin/berthctl" version
"$top/build/bin/berthctl" info | head -40
echo "berthd is running (pid $(cat /run/berth/berthd.pid)), log in /var/log/berthd.log"
