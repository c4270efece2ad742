"""What Ray costs a sweep on one machine: the same cells run one after another vs on Ray.

    python benchmarks/sweep_overhead.py [--epochs 10] [--out results.json]

Every mode starts from an empty results store and the same warm feature cache (so all
of them time the same training + evaluation work):

- ``in-process``: ``runner.run`` for each cell in one Python process (the floor);
- ``cli``: ``speechbench run ...`` for each cell, one after another (what a user does by hand);
- ``ray-1cpu``: ``speechbench sweep --num-cpus 1`` (Ray runs the cells one at a time:
  pure overhead = Ray start + one fresh worker process per cell);
- ``ray``: ``speechbench sweep`` on all CPUs (the default; parallel cells).

Overhead is wall time relative to ``in-process``. docs/sweep.md records the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CELLS = [(u, s) for u in ("mfcc", "fbank") for s in (0, 1)]


def cell_args(upstream: str, seed: int, epochs: int) -> list[str]:
    return [
        f"upstream={upstream}",
        "downstream=asr",
        f"seed={seed}",
        "corpus=tiny-synth",
        f"downstream.max_epochs={epochs}",
        f"downstream.min_epochs={epochs}",
        "threads=1",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--modes", default="in-process,cli,ray-1cpu,ray")
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sweep-overhead-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHBENCH_")}
    env.update(SPEECHBENCH_DATA=str(base / "data"), SPEECHBENCH_CACHE=str(base / "cache"))
    cli = [sys.executable, "-m", "speechbench.cli"]
    # warm corpus and feature cache (one epoch each, discarded)
    for upstream in ("mfcc", "fbank"):
        subprocess.run(
            [*cli, "run", *cell_args(upstream, 9, 1)],
            env={**env, "SPEECHBENCH_RESULTS": str(base / "warm")},
            check=True,
            capture_output=True,
        )
    grid = [
        "upstream=mfcc,fbank",
        "downstream=asr",
        "seed=0,1",
        "corpus=tiny-synth",
        f"downstream.max_epochs={opts.epochs}",
        f"downstream.min_epochs={opts.epochs}",
        "threads=1",
    ]
    timings: dict[str, float] = {}
    for mode in opts.modes.split(","):
        results = base / f"results-{mode}"
        shutil.rmtree(results, ignore_errors=True)
        run_env = {**env, "SPEECHBENCH_RESULTS": str(results)}
        start = time.perf_counter()
        if mode == "in-process":
            code = (
                "import sys\nfrom speechbench.runner import run\n"
                f"for args in {[cell_args(u, s, opts.epochs) for u, s in CELLS]!r}:\n"
                "    run(args)\n"
            )
            subprocess.run([sys.executable, "-c", code], env=run_env, check=True)
        elif mode == "cli":
            for upstream, seed in CELLS:
                subprocess.run(
                    [*cli, "run", *cell_args(upstream, seed, opts.epochs)],
                    env=run_env,
                    check=True,
                    capture_output=True,
                )
        elif mode in ("ray-1cpu", "ray"):
            extra = ["--num-cpus", "1"] if mode == "ray-1cpu" else []
            subprocess.run(
                [*cli, "sweep", *grid, *extra], env=run_env, check=True, capture_output=True
            )
        timings[mode] = round(time.perf_counter() - start, 1)
        print(f"{mode}: {timings[mode]} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    floor = timings.get("in-process")
    report = {
        "cells": len(CELLS),
        "epochs": opts.epochs,
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "seconds": timings,
        "relative_to_in_process": {k: round(v / floor - 1, 3) for k, v in timings.items() if floor},
    }
    print(json.dumps(report, indent=2))
    if opts.out:
        opts.out.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
