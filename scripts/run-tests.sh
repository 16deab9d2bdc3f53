#!/usr/bin/env bash
# The whole suite: lint (ruff), types (mypy strict on the package), then pytest. pytest's exit code 5 (no tests collected) is a failure
# here too: a suite that runs nothing must not pass silently.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check sciplat tests bench || exit 1
.venv/bin/mypy || exit 1
.venv/bin/python -m pytest -ra "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
  exit 1
fi
exit $code
