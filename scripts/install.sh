#!/usr/bin/env bash
# Install speechbench into ./.venv (Python 3.11, CPU torch 2.13 pinned) plus the
# Debian tools its corpora use (listed in .ci/apt-packages.txt). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -v '^\s*#' .ci/apt-packages.txt | xargs || true)
if command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null  # corpora fetch data packages with `apt-get download`
    [ -z "$packages" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  else
    missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done | xargs)
    [ -z "$missing" ] || echo "warning: not root; install these Debian packages yourself: $missing" >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e ".[test]"
echo "speechbench installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
