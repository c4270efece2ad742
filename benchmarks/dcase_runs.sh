#!/bin/sh
# Every measured dcase run, in priority order, inside ONE heavy slot.
cd "$(dirname "$0")/.."
: "${SPEECHBENCH_HOME:?set SPEECHBENCH_HOME}"
s() {  # a single-task light head
  echo "== single $* $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f "wall %e s user %U s maxrss %M KB" .venv/bin/speechbench run upstream=mel128 threads=1 "$@" 2>&1 | grep -v "it/s]\|s/it]" | tail -3
}
r() {  # dcasenet
  echo "== dcasenet $* $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f "wall %e s user %U s maxrss %M KB" .venv/bin/speechbench run upstream=mel128 downstream=dcasenet threads=1 "$@" 2>&1 | grep -v "it/s]\|s/it]" | tail -3
}
s downstream=sed
s downstream=asc
s downstream=tag
r downstream.arch=v3 seed=0
echo "== done $(date -u +%T)"
