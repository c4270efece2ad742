"""Write a new version of leaderboards/reference_points.json from committed runs.

The overall score (docs/leaderboard.md) needs, per column, fbank's mean and a reference
mean; both are frozen in a versioned file so that a new run never moves the scale.
This script takes the columns and their task grouping from ``COLUMNS`` and the values
from the runs given (the board's own cell means, the same ones the table shows):

    python benchmarks/reference_points.py --runs leaderboards/runs.jsonl --version 3 \
        --source "leaderboards/runs.jsonl at main $(git rev-parse --short HEAD)"
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from speechbench import atomic
from speechbench import leaderboard as lb
from speechbench.leaderboard_stats import REFERENCE_FILE, reference_points

# column key -> task; columns of one task are averaged first (SUPERB: one score per task).
# Version 3: every task on the leak-free corpora that every frame-level upstream can run
# and has run; tse joins when its rows on mini-tse-2ch v4 exist for every upstream.
COLUMNS = {
    "asr/mini-en v2 cer": "asr",
    "asr/mini-phone v2 per": "pr",
    "sv/mini-sv v3 eer": "sv",
    "sv-gmm-ubm/mini-sv v3 eer": "sv",
    "lid/mini-lid v2 cavg": "lid",
    "mos/mini-mos v3 srcc_ovrl": "mos",
    "mos-ssl/mini-mos v3 srcc_ovrl": "mos",
    "asc/mini-dcase-asc v3 accuracy": "asc",
    "tag/mini-dcase-tag v3 lwlrap": "tag",
    "sed/mini-dcase-sed v3 segment_er": "sed",
    "vc/mini-vc v2 wer": "vc",
    "tts/mini-vc v2 wer": "tts",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("leaderboards/runs.jsonl"))
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--source", required=True, help="where the runs are committed")
    parser.add_argument("--out", type=Path, default=REFERENCE_FILE)
    args = parser.parse_args()
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.version <= int(old.get("version", 0)):
        raise SystemExit(f"error: --version must be above the current {old.get('version')}")
    rows = lb.load_runs(args.runs)
    points = {
        "version": args.version,
        "created": datetime.date.today().isoformat(),
        "source": args.source,
        "definition": old.get("definition", ""),
        "reference_rule": old.get("reference_rule", ""),
        "note": (
            f"version {args.version}: the leak-free corpus versions of {len(COLUMNS)} "
            "columns in "
            f"{len(set(COLUMNS.values()))} tasks (benchmarks/reference_points.py); tse is "
            "not a column until every upstream has its row"
        ),
        "columns": reference_points(rows, COLUMNS),
    }
    atomic.write_text(args.out, json.dumps(points, indent=1) + "\n")
    for key, point in points["columns"].items():
        print(f"{key}: fbank {point['fbank']:.4f}, reference {point['reference']:.4f} "
              f"({point['reference_system']})")  # fmt: skip


if __name__ == "__main__":
    main()
