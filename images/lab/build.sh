#!/usr/bin/env bash
# Builds the sciplat lab image without a container daemon:
#   debootstrap -> podman import (images/base.sh) -> podman build --isolation chroot
# Usage: images/lab/build.sh [TAG]        (default tag: localhost/sciplat-lab:latest)
# Needs root, debootstrap and podman (apt-get install debootstrap podman runc); see base.sh
# for MIRROR, WORKDIR and REBUILD_BASE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../base.sh
. "$here/../base.sh"
tag=${1:-localhost/sciplat-lab:latest}

start=$(date +%s)
sciplat_base
site_certs "$here"
trap 'find "$here/certs" -name "*.crt" -delete' EXIT
echo "build.sh: podman build --isolation chroot -> $tag"
podman build --isolation chroot --build-arg "BASE=$BASE_IMAGE" -t "$tag" \
  -f "$here/Containerfile" "$here"
echo "build.sh: built $tag in $(( $(date +%s) - start ))s"
