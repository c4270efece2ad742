"""Markdown tables for docs/performance.md from the raw benchmark JSON.

python benchmarks/report.py   # reads benchmarks/results/*.json
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def cache_tables(report: dict) -> str:
    rows = [r for r in report["results"] if "skipped" not in r]
    out = [
        "| upstream | layers x dim (dtype) | x real time (wall) | x real time (CPU) "
        "| CPU-s per audio hour | cache MB per audio hour |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        layers, _, dim = r["feature_shape_per_item"]
        dtype = r["feature_dtype"].replace("torch.", "")
        out.append(
            f"| {r['upstream']} | {layers} x {dim} ({dtype}) | {r['x_realtime_wall']:.1f} "
            f"| {r['x_realtime_cpu']:.1f} | {r['cpu_s_per_audio_hour']:.0f} "
            f"| {r['cache_mb_per_audio_hour']:.1f} |"
        )
    out += [
        "",
        "| upstream | cached epoch (wall / CPU s) | recompute epoch (wall / CPU s) "
        "| speed-up per epoch, wall | speed-up per epoch, CPU "
        f"| speed-up over {rows[0]['epochs']} epochs incl. extraction, wall |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu_speedup = r["recompute_epoch_cpu_s"] / r["cached_epoch_cpu_s"]
        out.append(
            f"| {r['upstream']} | {r['cached_epoch_wall_s']:.2f} / {r['cached_epoch_cpu_s']:.2f} "
            f"| {r['recompute_epoch_wall_s']:.2f} / {r['recompute_epoch_cpu_s']:.2f} "
            f"| {r['speedup_per_epoch']:.1f}x | {cpu_speedup:.1f}x | {r['speedup_total']:.2f}x |"
        )
    return "\n".join(out)


def main() -> None:
    cache = _load("cache.json")
    if cache:
        before, after = cache["machine_before"], cache.get("machine_after", {})
        print(f"cache: {cache['command']}; {before['date']} -> {after.get('date')}")
        print(f"load average {before['load_average']} -> {after.get('load_average')}\n")
        print(cache_tables(cache))
    quality = _load("quality_parallel.json")
    if quality:
        print(
            f"\nquality: {quality['command']}; {quality['date']}; load "
            f"{quality['load_average_before']} -> {quality['load_average_after']}\n"
        )
        print("| | best of runs (s) | all runs (s) | x real time |")
        print("|---|---|---|---|")
        for name in ("serial", "parallel"):
            runs = ", ".join(f"{t:.1f}" for t in quality[f"{name}_s"])
            print(
                f"| {name} | {quality[f'best_{name}_s']:.1f} | {runs} "
                f"| {quality[f'{name}_x_realtime']:.1f} |"
            )
        print(f"\nspeed-up {quality['speedup']:.2f}x, max |diff| {quality['max_abs_difference']}")
    grid = _load("grid.json")
    if grid:
        from grid_breakdown import table  # benchmarks/ is the script's directory

        print(f"\ngrid: {grid['runs_file']}\n")
        print(table({"all": grid["total"]}, "grid") + "\n")
        print(table(grid["by_upstream"], "upstream") + "\n")
        print(table(grid["by_task"], "task"))


if __name__ == "__main__":
    main()
