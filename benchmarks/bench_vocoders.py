"""Copy synthesis of each vocoder on mini-vc test, scored by the evaluators.

Not a test: run ``python benchmarks/bench_vocoders.py [--corpus mini-vc] [--limit N]
[--spectral] [--out DIR]`` with ``SPEECHBENCH_HOME`` pointing at a prepared corpus.
Every test utterance is analysed into the vocoder's features (``wave_to_mel``) and
resynthesised (``mel_to_wave``); the original audio is the ceiling row. Columns:
whisper-tiny-en WER / CER against the text, DNSMOS OVRL (and SIG / BAK), GE2E cosine to
another test utterance of the same speaker, and with ``--spectral`` MCD-DTW and F0
metrics against the original. Results go to ``DIR/vocoders.json`` and a Markdown table
to stdout (overall and per voice source). Threads: one (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from speechbench.evaluators import create
from speechbench.evaluators.pairs import score_pairs

from speechbench import registry
from speechbench.audio import load

SYSTEMS: dict[str, tuple[str, dict]] = {
    "griffin-lim (32 it)": ("griffin-lim", {"n_iter": 32}),
    "griffin-lim (64 it)": ("griffin-lim", {"n_iter": 64}),
    "world (harvest)": ("world", {"f0_method": "harvest"}),
    "world (dio)": ("world", {"f0_method": "dio"}),
}
COLUMNS = ("wer", "cer", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "spk_sim")
SPECTRAL = ("mcd", "f0_rmse", "msep", "vde")


def _speaker_references(records) -> list[int]:
    """For item i, the index of another test utterance of the same speaker."""
    by_speaker: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_speaker.setdefault(r.speaker, []).append(i)
    out = []
    for i, r in enumerate(records):
        same = by_speaker[r.speaker]
        out.append(same[(same.index(i) + 1) % len(same)])
    return out


def _table(rows: list[dict], columns) -> str:
    head = "| system | n | " + " | ".join(columns) + " | vocode s/s audio |"
    lines = [head, "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        cells = []
        for c in columns:
            v = row["metrics"].get(c)
            cells.append(
                "-" if v is None else (f"{100 * v:.1f}%" if c in ("wer", "cer") else f"{v:.3f}")
            )
        speed = row.get("vocode_rtf")
        lines.append(
            f"| {row['system']} | {row['n']} | " + " | ".join(cells) + " | "
            + ("-" if speed is None else f"{speed:.3f}") + " |"
        )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="mini-vc")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--corpus-version", default="", help="read an older prepared version's manifest"
    )
    parser.add_argument("--limit", type=int, default=0, help="first N records (0: all)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--no-original", action="store_true", help="skip the ceiling row")
    parser.add_argument("--spectral", action="store_true", help="also MCD and F0 metrics")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-vocoders"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    corpus_cls = registry.get("corpora", args.corpus)
    if args.corpus_version:  # the manifest of an older build (same audio, other splits)
        corpus_cls = type(corpus_cls.__name__, (corpus_cls,), {"version": args.corpus_version})
    corpus = corpus_cls()
    records = corpus.split(args.split)
    if args.limit:
        records = records[: args.limit]
    originals = [load(corpus.audio_path(r), 16000, r.sample_rate) for r in records]
    audio_seconds = sum(w.numel() for w in originals) / 16000
    texts = [r.text for r in records]
    others = _speaker_references(records)
    speaker_refs = [originals[j] for j in others]
    sources = [r.labels.get("source", "?") for r in records]
    print(
        f"{args.corpus} v{corpus.version} {args.split}: {len(records)} utterances, "
        f"{audio_seconds:.0f} s audio"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    systems = [] if args.no_original else [("original (ceiling)", None, {})]
    systems += [(label, *SYSTEMS[label]) for label in args.systems.split(",") if label]
    for label, name, options in systems:
        start = time.perf_counter()
        if name is None:
            generated, rtf = originals, None
        else:
            vocoder = create(name, **options)
            generated = [vocoder.copy_synthesis(w) for w in originals]
            rtf = (time.perf_counter() - start) / audio_seconds
        vocoded = time.perf_counter()
        result = score_pairs(
            generated,
            originals if args.spectral else None,
            texts=texts,
            speaker_references=speaker_refs,
            ids=[r.id for r in records],
            spectral=args.spectral,
        )
        per_source = {}
        for source in sorted(set(sources)):
            keep = [i for i, s in enumerate(sources) if s == source]
            items = [result.items[i] for i in keep]
            wanted = [texts[i] for i in keep]
            from speechbench.metrics.recognition import word_error_rate

            from speechbench.text import normalize

            per_source[source] = {
                "n": len(keep),
                "wer": word_error_rate(
                    [normalize(t) for t in wanted], [it["transcript"] for it in items]
                ),
                "dnsmos_ovrl": float(np.mean([it["dnsmos_ovrl"] for it in items])),
                "spk_sim": float(np.mean([it["spk_sim"] for it in items])),
            }
        row = {
            "system": label,
            "vocoder": name,
            "options": options,
            "features": repr(vocoder.features) if name else None,
            "n": len(records),
            "metrics": result.metrics,
            "unscored": result.unscored,
            "per_source": per_source,
            "vocode_rtf": rtf,
            "score_seconds": round(time.perf_counter() - vocoded, 1),
            "evaluators": result.evaluators,
            "items": result.items,
        }
        rows.append(row)
        print(_table([row], COLUMNS + (SPECTRAL if args.spectral else ())), flush=True)
        (args.out / "vocoders.json").write_text(json.dumps(rows, indent=1))
    print()
    print(_table(rows, COLUMNS + (SPECTRAL if args.spectral else ())))
    print()
    for row in rows:
        parts = [
            f"{s}: WER {100 * v['wer']:.1f}% OVRL {v['dnsmos_ovrl']:.2f} sim {v['spk_sim']:.3f}"
            for s, v in row["per_source"].items()
        ]
        print(f"- {row['system']}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
