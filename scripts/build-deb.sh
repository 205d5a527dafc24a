#!/usr/bin/env bash
# Builds the berth .deb from this checkout's working tree and checks it with
# lintian. Usage: scripts/build-deb.sh [--prebuilt BIN_DIR] [OUTPUT_DIR]
# (default output: dist/). A full build from source takes a while on a small
# machine; --prebuilt build/bin packages the programs of an existing build
# (same files, without Debian's hardening flags) in seconds.
# Needs debhelper, dpkg-dev and lintian (scripts/setup.sh installs them) and
# the build dependencies of debian/control. Uses ccache when it is installed.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${1:-} == --prebuilt ]]; then
  export BERTH_PREBUILT_BIN=$(realpath "$2")
  shift 2
fi
out=$(realpath -m "${1:-$src/dist}")
work=$(mktemp -d /tmp/berth-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A copy of the tracked and new files (not build/ or other ignored output), so
# dpkg-buildpackage writes its results next to the copy, not next to the checkout.
mkdir "$work/berth"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do
    if [[ -e $f ]]; then cp --parents -- "$f" "$work/berth/"; fi
  done)

# Paths relative to the copy, so a second build hits ccache.
export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1
export DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
# -d: with --prebuilt the build dependencies need not be installed.
(cd "$work/berth" && dpkg-buildpackage -b -us -uc ${BERTH_PREBUILT_BIN:+-d})

mkdir -p "$out"
cp "$work"/berth_*.deb "$work"/berth_*.changes "$out"/
deb=$(ls "$out"/berth_*.deb | sort | tail -n 1)
echo "build-deb: $deb"
# lintian exits non-zero on errors only (--fail-on error).
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb"
echo "build-deb: lintian found no errors"
