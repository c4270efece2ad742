"""Table 1 of the CTAP paper, reproduced from stored vc / tts runs, and a listening page.

    python benchmarks/generation_table.py [--include leaderboards/runs.jsonl] [--out DIR]

Reads finished ``vc`` and ``tts`` runs (the newest run per system label) from the results
store and from each ``--include`` (a committed leaderboard's ``runs.jsonl``), prints
Markdown tables (TTS: MSEP, WER, spk sim, DNSMOS; VC: WER, spk
sim, MCD, MSEP, DNSMOS; each with its 95% interval, plus the copy-synthesis ceiling and
the unrelated-speech WER of the same items), and writes ``OUT/index.html`` with audio
players for the first generated samples of each run (copied as 16 kHz WAVs into
``OUT/audio/``; the total is kept under ``--max-mb``). A sample comes from the run's own
folder when this machine has it, else from the samples the leaderboard kept beside the
included ``runs.jsonl`` (``runs/<id>/samples/``), so the page rebuilds on a fresh clone.
"""

from __future__ import annotations

import argparse
import html
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechbench.leaderboard import combined_runs
from speechbench.site import kept_sample

COLUMNS = {
    "tts": ("msep", "wer", "spk_sim", "dnsmos_ovrl"),
    "vc": ("wer", "spk_sim", "mcd", "msep", "dnsmos_ovrl"),
}
REAL = ("wer_real", "spk_sim_real", "dnsmos_ovrl_real")


def newest_per_system(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r.get("finished_at") or ""):  # later rows win
        if row["downstream"] in COLUMNS and row.get("status", "finished") == "finished":
            found[(row["downstream"], row.get("system") or row["upstream"])] = row
    return found


def cell(metrics: dict[str, float], key: str) -> str:
    if key not in metrics:
        return "-"
    scale, fmt = (100.0, "{:.1f}%") if key.startswith("wer") else (1.0, "{:.3g}")
    text = fmt.format(metrics[key] * scale)
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is not None and high is not None:
        text += f" [{fmt.format(low * scale)}, {fmt.format(high * scale)}]"
    return text


def table(task: str, runs: dict[tuple[str, str], dict[str, Any]]) -> str:
    keys = COLUMNS[task]
    lines = [
        f"| {task} system | epochs | " + " | ".join(keys) + " | " + " | ".join(REAL) + " |",
        "|---|---|" + "---|" * (len(keys) + len(REAL)),
    ]
    ceiling = None
    for (kind, system), row in sorted(runs.items()):
        if kind != task:
            continue
        m = row["metrics"]
        epochs = (row.get("labels") or {}).get("epochs_run", "")
        values = [cell(m, k) for k in keys] + [cell(m, k) for k in REAL]
        lines.append(f"| {system} | {epochs} | " + " | ".join(values) + " |")
        ceiling = ceiling or m
    if ceiling is not None:
        copy = [cell(ceiling, f"{k}_copy") for k in keys]
        natural = ["-", cell(ceiling, "spk_sim_real_natural"), "-"]
        lines.append("| ground truth (copy synthesis) | - | " + " | ".join(copy) + " | "
                     + " | ".join(natural) + " |")  # fmt: skip
        lines.append(
            f"| unrelated speech | - | {cell(ceiling, 'wer_unrelated')} | "
            + " | ".join(["-"] * (len(keys) - 1 + len(REAL)))
            + " |"
        )
    return "\n".join(lines)


def sample_file(row: dict[str, Any], name: str, boards: Sequence[Path]) -> Path | None:
    """The run's artefact ``name``: in its run folder, else kept by a committed board."""
    candidates = [Path(row["run_dir"]) / "artefacts" / name] if row.get("run_dir") else []
    candidates += [kept_sample(board, row["run_id"], name) for board in boards]
    return next((path for path in candidates if path.is_file()), None)


def page(
    runs: dict[tuple[str, str], dict[str, Any]],
    out: Path,
    max_mb: float,
    per_run: int = 4,
    boards: Sequence[Path] = (),
) -> int:
    """index.html with up to ``per_run`` samples per run; returns the bytes of audio copied.
    ``boards``: folders of committed leaderboards, where runs not on this machine kept
    their first samples."""
    audio_dir = out / "audio"
    shutil.rmtree(audio_dir, ignore_errors=True)
    audio_dir.mkdir(parents=True)
    budget, used = max_mb * 1e6, 0
    parts = [
        "<!doctype html><meta charset=utf-8><title>speechbench generation samples</title>",
        "<h1>Generated samples (vc, tts)</h1>",
        "<p>16 kHz WAVs written by the runs' artefact sink; see docs/generation.md.</p>",
    ]
    for (task, system), row in sorted(runs.items()):
        parts.append(f"<h2>{html.escape(task)}: {html.escape(system)}</h2><table>")
        for artefact in [a for a in row.get("artefacts") or [] if a["kind"] == "audio"][:per_run]:
            source = sample_file(row, artefact["name"], boards)
            if source is None or used + source.stat().st_size > budget:
                continue
            name = f"{task}-{system}-{artefact['name']}".replace("/", "_").replace(" ", "_")
            name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
            shutil.copyfile(source, audio_dir / name)
            used += source.stat().st_size
            label = html.escape(artefact["name"])
            parts.append(f"<tr><td>{label}</td><td><audio controls preload=none "
                         f"src='audio/{name}'></audio></td></tr>")  # fmt: skip
        parts.append("</table>")
    (out / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="this results store")
    parser.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        help="also read runs (and their kept samples) from this runs.jsonl (repeatable)",
    )
    # no default: the page is rebuilt from the runs read here and replaces OUT/audio, so a
    # call without the committed runs (--include) must not overwrite docs/generation
    parser.add_argument("--out", type=Path, default=None, help="write the listening page here")
    parser.add_argument("--max-mb", type=float, default=4.9)  # the issue: under 5 MB in all
    parser.add_argument("--per-run", type=int, default=3, help="samples per run on the page")
    args = parser.parse_args()
    runs = newest_per_system(combined_runs(args.include, args.results))
    for task in COLUMNS:
        print(table(task, runs), "\n")
    if args.out is not None:
        boards = [path.parent for path in args.include]
        used = page(runs, args.out, args.max_mb, args.per_run, boards)
        print(f"wrote {args.out / 'index.html'} with {used / 1e6:.2f} MB of audio")


if __name__ == "__main__":
    main()
