#!/usr/bin/env bash
# Install speechbench into ./.venv (Python 3.11, CPU torch 2.13 pinned) plus the
# Debian tools its corpora use (listed in .ci/apt-packages.txt). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -v '^\s*#' .ci/apt-packages.txt | xargs || true)
if command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    # another apt on this machine (a second install, unattended upgrades) holds its locks
    # for a while: wait for them instead of failing (measured: two installs started
    # together made the second stop at once with "Could not get lock")
    lock_wait=(-o DPkg::Lock::Timeout=600)
    for attempt in $(seq 1 60); do  # the lists lock of `update` is not covered by the timeout
      apt-get "${lock_wait[@]}" update -qq >/dev/null 2>&1 && break
      [ "$attempt" = 60 ] && apt-get update -qq >/dev/null  # the real error, once
      sleep 10
    done  # corpora fetch data packages with `apt-get download`
    [ -z "$packages" ] || DEBIAN_FRONTEND=noninteractive \
      apt-get "${lock_wait[@]}" install -y -qq $packages >/dev/null
  else
    missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done | xargs)
    [ -z "$missing" ] || echo "warning: not root; install these Debian packages yourself: $missing" >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e ".[test]"
# resemblyzer depends on the Python 2-era `typing` backport; on 3.11 it only shadows the
# standard library when site-packages comes first, so drop it.
.venv/bin/python -m pip uninstall -q -y typing 2>/dev/null || true
echo "speechbench installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
