#!/usr/bin/env bash
# Create .venv and install vitr with its pinned dependencies (offline-capable: PyPI packages only).
# The install is editable, so code changes need no reinstall; it runs again only when pyproject.toml, the
# extras, the venv's Python or the checkout's place changed (a stamp in .venv holds their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS="dev,teachers,vectordb,text"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.vitr-install-stamp
WANT=$(.venv/bin/python - "$EXTRAS" <<'PY'
import hashlib, os, sys
digest = hashlib.sha256(open("pyproject.toml", "rb").read())
digest.update(f"{sys.version}|{sys.executable}|{sys.argv[1]}|{os.getcwd()}".encode())
print(digest.hexdigest())
PY
)
if [ -x .venv/bin/vitr ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "vitr is installed in $(pwd)/.venv (nothing changed since; delete $STAMP to force a reinstall)"
  exit 0
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
echo "$WANT" > "$STAMP"
echo "vitr installed in $(pwd)/.venv"
