"""Layer-weight profiles: which layers a task's head reads from each multi-layer upstream.

    python benchmarks/layer_profiles.py --include leaderboards/runs.jsonl \
        --upstreams ctap hubert-mini wavlm-mini --tasks asr sv

Not a test. Every head that reads a multi-layer upstream learns softmax weights over its
layers (SUPERB's weighted sum, ``downstreams/base.py``); the runner stores them in the
run's ``training.json``. SUPERB's observation on HuBERT/WavLM Base is that content (ASR)
sits in the upper-middle layers and speaker identity (SV) in the lower ones; this prints
the weights per (upstream, task, corpus), averaged over the seeds found, so that can be
checked at this project's scale. Layer 0 is the upstream's input-side output (the CNN
features for HuBERT/WavLM, the first block for CTAP).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from speechbench.leaderboard import load_runs, task_of
from speechbench.leaderboard_stats import layer_weights


def profiles(rows: list[dict], upstreams: list[str], tasks: list[str]) -> dict[tuple, dict]:
    """Mean layer weights (and the seeds behind them) per (upstream, task) of finished rows
    with the default options (a changed option is another system)."""
    found: dict[tuple, list[list[float]]] = defaultdict(list)
    seeds: dict[tuple, set] = defaultdict(set)
    for row in rows:
        if row.get("status") != "finished" or row["upstream"] not in upstreams:
            continue
        if row["downstream"] not in tasks or (row.get("labels") or {}).get("changed_options"):
            continue
        weights = layer_weights(row)
        if weights:
            key = (row["upstream"], task_of(row))
            found[key].append(weights)
            seeds[key].add(row.get("seed"))
    return {
        key: {"weights": np.mean(found[key], axis=0).tolist(), "seeds": sorted(seeds[key])}
        for key in sorted(found)
    }


def markdown(table: dict[tuple, dict]) -> str:
    layers = max((len(v["weights"]) for v in table.values()), default=0)
    out = [
        "| upstream | task | seeds | " + " | ".join(f"L{i}" for i in range(layers)) + " | peak |",
        "|---|---|---|" + "---|" * layers + "---|",
    ]
    for (upstream, task), entry in table.items():
        weights = entry["weights"]
        cells = [f"{w:.2f}" for w in weights] + [""] * (layers - len(weights))
        seeds = ",".join(str(s) for s in entry["seeds"])
        peak = int(np.argmax(weights))
        out.append(f"| {upstream} | {task} | {seeds} | " + " | ".join(cells) + f" | L{peak} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include", type=Path, action="append", required=True)
    parser.add_argument("--upstreams", nargs="+", default=["ctap", "hubert-mini", "wavlm-mini"])
    parser.add_argument("--tasks", nargs="+", default=["asr", "sv"])
    args = parser.parse_args()
    rows = [row for path in args.include for row in load_runs(path)]
    print(markdown(profiles(rows, args.upstreams, args.tasks)))


if __name__ == "__main__":
    main()
