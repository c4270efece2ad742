"""PESQ / STOI throughput: the metrics layer's joblib (loky) pool against a serial loop.

    python benchmarks/bench_quality.py --utterances 60 --repeats 3 \
        --out benchmarks/results/quality_parallel.json

Not a test. Real read speech (Debian ``asterisk-core-sounds-en-wav``, 8 kHz, resampled
to 16 kHz) with white noise at 10 dB SNR as the "degraded" output; each utterance is
scored with PESQ wb and STOI. ``workers=1`` runs in this process; ``workers=N`` uses
the pool, which is started once before timing (a long-running scorer reuses it).
Serial and parallel runs alternate and the best of ``--repeats`` is kept, so machine
load hits both alike; the load average before and after is recorded, because on a
shared machine the pool can only use the cores other processes leave free. Both
paths must give the same scores (reported: the largest difference).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


def speech(n: int, seed: int = 0) -> list[np.ndarray]:
    from speechbench.corpora.debian import fetch_package

    root = fetch_package("asterisk-core-sounds-en-wav")
    files = sorted(root.rglob("sounds/en_US_f_Allison/*.wav"))
    rng = np.random.default_rng(seed)
    out = []
    for index in rng.permutation(len(files)):
        wav, rate = sf.read(str(files[index]), dtype="float64")
        if wav.ndim == 1 and 2.0 <= wav.size / rate <= 5.0:
            out.append(resample_poly(wav, 2, 1) if rate == 8000 else wav)
        if len(out) == n:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from speechbench.metrics.quality import pesq_wb, stoi

    clean = speech(args.utterances)
    rng = np.random.default_rng(1)
    noisy = []
    for wav in clean:
        noise = rng.standard_normal(wav.size)
        noisy.append(wav + noise * np.sqrt(np.mean(wav**2) / np.mean(noise**2) / 10.0))
    audio_s = sum(w.size for w in clean) / 16000

    def score(workers: int):
        return (
            pesq_wb(clean, noisy, 16000, workers=workers),
            stoi(clean, noisy, 16000, workers=workers),
        )

    load_before = os.getloadavg()
    score(args.workers)  # start the pool once
    timings = {"serial": [], "parallel": []}
    results = {}
    for repeat in range(args.repeats):
        order = ("serial", "parallel") if repeat % 2 == 0 else ("parallel", "serial")
        for name in order:
            start = time.perf_counter()
            results[name] = score(1 if name == "serial" else args.workers)
            timings[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    difference = max(
        float(np.nanmax(np.abs(a - b)))
        for a, b in zip(results["serial"], results["parallel"], strict=True)
    )
    serial, parallel = min(timings["serial"]), min(timings["parallel"])
    report = {
        "benchmark": "quality_parallel",
        "command": (
            f"python benchmarks/bench_quality.py --utterances {args.utterances} "
            f"--repeats {args.repeats} --workers {args.workers}"
        ),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "utterances": len(clean),
        "audio_s": audio_s,
        "metrics": ["pesq_wb", "stoi"],
        "serial_s": timings["serial"],
        "parallel_s": timings["parallel"],
        "best_serial_s": serial,
        "best_parallel_s": parallel,
        "speedup": serial / parallel,
        "serial_x_realtime": audio_s / serial,
        "parallel_x_realtime": audio_s / parallel,
        "max_abs_difference": difference,  # same scores either way (float rounding only)
        "mean_pesq_wb": float(np.nanmean(results["serial"][0])),
        "mean_stoi": float(np.nanmean(results["serial"][1])),
        "load_average_before": load_before,
        "load_average_after": load_after,
        # The load after includes this benchmark's own workers, so only the load before
        # says whether other processes were competing for the cores.
        "machine": "idle" if load_before[0] < 1.0 else "loaded",
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
