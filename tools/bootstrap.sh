#!/usr/bin/env bash
# Create the project venv with the pinned toolchain (requirements/toolchain.txt).
# On a fresh Debian/Ubuntu, python3-venv may be missing: install it.
set -euo pipefail
VENV=${1:-.venv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "twinhub needs Python >= 3.11 (found $(python3 --version))" >&2; exit 1
fi
rm -rf "$VENV"
if ! python3 -m venv "$VENV" 2>/dev/null; then
  echo "[bootstrap] python3 -m venv failed; installing python3-venv"
  rm -rf "$VENV"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
  python3 -m venv "$VENV"
fi
# pip's output goes to a log, shown only when the install fails.
log="$VENV/pip-install.log"
if ! { "$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q -r "$ROOT/requirements/toolchain.txt"; } >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" | tail -40 >&2
  echo "[bootstrap] pip install failed; full log in $log" >&2
  exit 1
fi
# As in the hub image (images/hub/Dockerfile): jsonschema builds
# rfc3987-syntax's grammar at import (1.2 s of CPU) for the one format
# ("iri") nothing here validates; molecule, ansible-lint and every test
# worker import jsonschema.
"$VENV/bin/pip" uninstall -y -q rfc3987-syntax >>"$log" 2>&1 || true
echo "[bootstrap] toolchain installed in $VENV"
