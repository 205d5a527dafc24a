#!/usr/bin/env bash
# Installs what Berth needs, builds it and starts berthd on its embedded
# defaults (socket /run/berth/berth.sock), then shows it working: version and
# status, and a pod with one running container. These machines reach no
# outside registry, so the demo image (busybox from Debian's busybox-static)
# is built here and served by a registry on 127.0.0.1:5099.
# berthd keeps running in the background; its log is /var/log/berthd.log.
# Stop it with: kill $(cat /run/berth/berthd.pid)
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
bash "$top/scripts/setup.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$top/build" -j"$(nproc)" berthd berthctl berth-monitor berth-pause make_bench_image
bin="$top/build/bin"
mkdir -p /run/berth
if [ -f /run/berth/berthd.pid ] && kill -0 "$(cat /run/berth/berthd.pid)" 2>/dev/null; then
  echo "berthd already running (pid $(cat /run/berth/berthd.pid)); restarting it"
  kill "$(cat /run/berth/berthd.pid)"
  sleep 5
fi
nohup "$bin/berthd" >>/var/log/berthd.log 2>&1 &
echo $! > /run/berth/berthd.pid
for _ in $(seq 1 50); do
  [ -S /run/berth/berth.sock ] && "$bin/berthctl" version >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin/berthctl" version
"$bin/berthctl" info | head -30

# The demo image, from a registry on loopback.
demo=/var/lib/berth-demo-registry
if ! curl -sf http://127.0.0.1:5099/v2/ >/dev/null; then
  mkdir -p "$demo"
  cat > "$demo/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $demo/data
http:
  addr: 127.0.0.1:5099
log:
  level: error
YML
  nohup docker-registry serve "$demo/config.yml" >"$demo/log" 2>&1 &
  for _ in $(seq 1 50); do curl -sf http://127.0.0.1:5099/v2/ >/dev/null && break; sleep 0.1; done
fi
"$bin/make_bench_image" --registry 127.0.0.1:5099 --repository berth/busybox --tag demo --layers 0 >/dev/null
"$bin/berthctl" pull 127.0.0.1:5099/berth/busybox:demo

# A pod on the host network with one container.
name="demo-$(date +%s)"
cat > /run/berth/demo-pod.json <<JSON
{"metadata": {"name": "$name", "namespace": "default", "uid": "$name"},
 "log_directory": "/var/log/berth-demo",
 "linux": {"security_context": {"namespace_options": {"network": 2, "pid": 1}}}}
JSON
cat > /run/berth/demo-container.json <<JSON
{"metadata": {"name": "hello"},
 "image": {"image": "127.0.0.1:5099/berth/busybox:demo"},
 "command": ["/bin/sh", "-c", "echo hello from a Berth container; sleep 3600"],
 "log_path": "hello.log"}
JSON
mkdir -p /var/log/berth-demo
"$bin/berthctl" run /run/berth/demo-container.json /run/berth/demo-pod.json
sleep 1
"$bin/berthctl" pods
"$bin/berthctl" ps
"$bin/berthctl" logs "$("$bin/berthctl" ps -q --name hello -l)"
echo "berthd is running (pid $(cat /run/berth/berthd.pid)), log in /var/log/berthd.log"
echo "remove the demo pod with: $bin/berthctl rmp -f \$($bin/berthctl pods -q --name $name)"
