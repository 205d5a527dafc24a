#!/usr/bin/env bash
# Installs every Debian package Berth needs to build, test and run. Idempotent:
# the only set-up step on a fresh Debian 12 machine.
set -euo pipefail

packages=(
  # toolchain and libraries
  build-essential cmake pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev libzstd-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev libmicrohttpd-dev
  libyaml-dev libseccomp-dev libjemalloc-dev
  # the sanitizer suite and fuzzing (clang, its ASan/UBSan/TSan/libFuzzer
  # runtimes, llvm-symbolizer for readable reports), the style checks
  # (clang-format, clang-tidy, run-clang-tidy), and a compiler cache; clang-tidy 22
  # (Debian 12 security updates) for scripts/check-tidy.sh: half the CPU time of 14
  clang libclang-rt-14-dev llvm clang-format clang-tidy clang-tidy-22 clang-tools ccache
  # the Debian package (scripts/build-deb.sh, scripts/test-deb.sh) and the
  # shells whose completion scripts berthctl generates
  debhelper dpkg-dev lintian debootstrap zsh
  # what berthd drives at run time
  runc crun containernetworking-plugins iproute2 iptables ca-certificates
  criu  # CheckpointContainer (runc checkpoint drives it)
  # what the tests and benchmarks run against
  docker-registry busybox-static apache2-utils containerd curl openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's post-install scripts start no services here (PID 1 is not systemd),
# and the tests start their own registry and containerd; nothing else to do.
echo "setup: all packages present"
