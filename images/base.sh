#!/usr/bin/env bash
# The base of sciplat's images, built without a daemon: debootstrap (Debian bookworm, minbase,
# with python3) -> tar -> podman import. Sourced by images/*/build.sh; defines sciplat_base,
# which builds localhost/sciplat-base:bookworm unless it exists (REBUILD_BASE=1: always), and
# site_certs, which copies the host's site CAs into a build context's certs/.
# Environment: MIRROR (default: the first bookworm mirror this machine's apt uses),
# WORKDIR (scratch space; default: .cache/images in the checkout).
set -euo pipefail
images_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checkout=$(cd "$images_dir/.." && pwd)
BASE_IMAGE=localhost/sciplat-base:bookworm

die() { echo "${0##*/}: $*" >&2; exit 1; }

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

sciplat_base() {
  [ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root"
  local tool
  for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap podman runc"
  done
  if [ "${REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
    return 0
  fi
  local mirror workdir rootfs
  mirror=${MIRROR:-$(apt_mirror | head -n1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  workdir=${WORKDIR:-$checkout/.cache/images}
  rootfs=$workdir/rootfs
  echo "${0##*/}: debootstrap bookworm (minbase) from $mirror"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $workdir/debootstrap.log"
  # no apt lists or package caches in the image
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb
  echo "${0##*/}: podman import -> $BASE_IMAGE"
  tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# site_certs DIR: the host's site CAs (an egress proxy's, a private index's) into DIR/certs
site_certs() {
  local crt
  mkdir -p "$1/certs"
  find "$1/certs" -name '*.crt' -delete
  for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] && cp "$crt" "$1/certs/"
  done
  return 0
}
