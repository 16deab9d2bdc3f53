#!/usr/bin/env bash
# Builds the sciplat lab image without a container daemon:
#   debootstrap (bookworm, minbase) -> tar -> podman import -> podman build --isolation chroot
# Usage: images/lab/build.sh [TAG]        (default tag: localhost/sciplat-lab:latest)
# Environment:
#   MIRROR        Debian mirror; default: the first bookworm mirror this machine's apt uses
#   WORKDIR       scratch directory for the root filesystem; default: .cache/lab-image
#   REBUILD_BASE  1: debootstrap again even if the base image exists
# Needs root, debootstrap and podman (apt-get install debootstrap podman runc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
tag=${1:-localhost/sciplat-lab:latest}
base=localhost/sciplat-lab-base:bookworm
workdir=${WORKDIR:-$checkout/.cache/lab-image}

die() { echo "build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root (sudo $0)"
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap podman runc"
done

apt_mirror() {
  # deb822 .sources files ("URIs: ... / Suites: bookworm") first, then one-line sources.list
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' "$f"
  done
}
mirror=${MIRROR:-$(apt_mirror | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

start=$(date +%s)
if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
  echo "build.sh: debootstrap bookworm (minbase) from $mirror"
  rootfs=$workdir/rootfs
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $workdir/debootstrap.log"
  # no apt lists or caches in the image
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  echo "build.sh: podman import -> $base"
  tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null
  rm -rf "$rootfs"
fi

# the host's site CAs (an egress proxy's) go into the image's trust store
find "$here/certs" -name '*.crt' -delete
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$crt" ] && cp "$crt" "$here/certs/"
done

echo "build.sh: podman build --isolation chroot -> $tag"
podman build --isolation chroot --build-arg "BASE=$base" -t "$tag" -f "$here/Containerfile" "$here"
find "$here/certs" -name '*.crt' -delete
echo "build.sh: built $tag in $(( $(date +%s) - start ))s"
