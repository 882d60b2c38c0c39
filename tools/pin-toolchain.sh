#!/usr/bin/env bash
# Re-pin requirements/toolchain.txt from requirements/toolchain.in in a clean venv.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q -r "$ROOT/requirements/toolchain.in"
{ grep '^#' "$ROOT/requirements/toolchain.txt"; "$tmp/venv/bin/pip" freeze | sort -f; } > "$tmp/toolchain.txt"
mv "$tmp/toolchain.txt" "$ROOT/requirements/toolchain.txt"
rm -rf "$tmp"
