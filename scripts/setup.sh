#!/usr/bin/env bash
# Create .venv and install vitr with its pinned dependencies (offline-capable: PyPI packages only).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,teachers,vectordb]"
echo "vitr installed in $(pwd)/.venv"
