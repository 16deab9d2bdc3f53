#!/usr/bin/env bash
# Builds the sciplat control-plane image (hub, TAP, jobs) without a container daemon:
#   debootstrap -> podman import (images/base.sh) -> podman build --isolation chroot
# Usage: images/hub/build.sh [TAG]        (default tag: localhost/sciplat:latest)
# Needs root, debootstrap and podman; the wheel is built from this checkout with .venv's pip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../base.sh
. "$here/../base.sh"
tag=${1:-localhost/sciplat:latest}

start=$(date +%s)
sciplat_base
site_certs "$here"
trap 'find "$here/certs" -name "*.crt" -delete; rm -f "$here"/sciplat-*.whl' EXIT
rm -f "$here"/sciplat-*.whl
"$checkout/.venv/bin/python" -m pip wheel -q --no-deps \
  --disable-pip-version-check -w "$here" "$checkout" >/dev/null
echo "build.sh: podman build --isolation chroot -> $tag"
podman build --isolation chroot --build-arg "BASE=$BASE_IMAGE" -t "$tag" \
  -f "$here/Containerfile" "$here"
echo "build.sh: built $tag in $(( $(date +%s) - start ))s"
