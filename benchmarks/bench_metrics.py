"""Speed of the vectorised metrics against straightforward reference implementations.

    python benchmarks/bench_metrics.py          # full sizes from the issue
    python benchmarks/bench_metrics.py --quick  # small sizes, a few seconds

Each row times speechbench's implementation and a plain one written here from the
definition (per-item Python loops, the way the metric is usually first coded), checks
that both give the same number, and reports the speed ratio. PESQ + STOI compare a
serial loop with the parallel pool. Not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# ---- straightforward references ------------------------------------------------------------


def reference_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """The common recipe: sklearn ROC, then a root finder on an interpolated curve."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0))


def reference_min_dcf(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0) -> float:
    """Kaldi-style: sort once, then walk the thresholds in a Python loop."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = scores[order].tolist(), labels[order].tolist()
    n_target = sum(sorted_labels)
    n_nontarget = len(sorted_labels) - n_target
    misses, false_alarms = 0, n_nontarget
    best = c_fa * (1 - p_target)  # accept everything
    for i, label in enumerate(sorted_labels):
        if label:
            misses += 1
        else:
            false_alarms -= 1
        if i + 1 < len(sorted_scores) and sorted_scores[i + 1] == sorted_scores[i]:
            continue  # tied scores share a threshold
        cost = (
            c_miss * p_target * misses / n_target
            + c_fa * (1 - p_target) * false_alarms / n_nontarget
        )
        best = min(best, cost)
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


def reference_lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Per clip: rank the classes, precision at each positive class; pool all positives."""
    total, count = 0.0, 0
    for labels, row in zip(truth, scores, strict=True):
        for cls in np.flatnonzero(labels):
            at_or_above = row >= row[cls]
            total += np.sum(at_or_above & labels.astype(bool)) / np.sum(at_or_above)
            count += 1
    return total / count


def reference_si_sdr(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """One utterance at a time in numpy."""
    out = []
    for est, ref in zip(estimates, references, strict=True):
        est, ref = est - est.mean(), ref - ref.mean()
        target = (est @ ref) / (ref @ ref) * ref
        out.append(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))
    return np.array(out)


# ---- data -----------------------------------------------------------------------------------


def speech_like(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(100, 220)
    voiced = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 3.5) * t), 0, None) ** 0.5
    return 0.2 * voiced * envelope + 0.003 * rng.standard_normal(t.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    q = args.quick
    n_trials = 100_000 if q else 1_000_000
    n_clips, n_classes = (2_000, 80) if q else (10_000, 80)
    n_utts, seconds = (200, 4.0) if q else (1_000, 4.0)
    n_quality = 20 if q else 200
    rng = np.random.default_rng(0)
    rows = []

    from speechbench.metrics.verification import equal_error_rate, min_dcf

    labels = (rng.random(n_trials) < 0.1).astype(np.int8)
    scores = np.round(rng.standard_normal(n_trials) + 2.0 * labels, 4)  # 4 decimals: real ties
    ours, t_ours = timed(lambda: equal_error_rate(scores, labels))
    ref, t_ref = timed(lambda: reference_eer(scores, labels))
    rows.append((f"EER, {n_trials:,} trials", t_ref, t_ours, abs(ours - ref)))
    ours, t_ours = timed(lambda: min_dcf(scores, labels))
    ref, t_ref = timed(lambda: reference_min_dcf(scores, labels))
    rows.append((f"minDCF(0.01), {n_trials:,} trials", t_ref, t_ours, abs(ours - ref)))

    from speechbench.metrics.tagging import lwlrap

    truth = rng.random((n_clips, n_classes)) < 0.03
    truth[~truth.any(axis=1), 0] = True
    tag_scores = rng.random((n_clips, n_classes)) + truth
    ours, t_ours = timed(lambda: lwlrap(truth, tag_scores))
    ref, t_ref = timed(lambda: reference_lwlrap(truth, tag_scores))
    rows.append((f"lwlrap, {n_clips:,} x {n_classes}", t_ref, t_ours, abs(ours - ref)))

    from speechbench.metrics.separation import si_sdr

    refs = rng.standard_normal((n_utts, int(seconds * 16000))).astype(np.float32)
    ests = refs + 0.5 * rng.standard_normal(refs.shape).astype(np.float32)
    ours, t_ours = timed(lambda: si_sdr(ests, refs).numpy())
    ref, t_ref = timed(lambda: reference_si_sdr(ests.astype(np.float64), refs.astype(np.float64)))
    rows.append(
        (f"SI-SDR, {n_utts} x {seconds:.0f} s", t_ref, t_ours, float(np.max(np.abs(ours - ref))))
    )

    from speechbench.metrics.quality import pesq_wb, stoi

    clean = [speech_like(rng, 3.0, 16000) for _ in range(n_quality)]
    noisy = [c + 0.02 * rng.standard_normal(c.size) for c in clean]
    workers = os.cpu_count() or 1

    def both(n_workers: int) -> np.ndarray:
        return np.concatenate(
            [
                pesq_wb(clean, noisy, 16000, workers=n_workers),
                stoi(clean, noisy, 16000, workers=n_workers),
            ]
        )

    both(workers)  # start the worker pool once, as a long-running scorer would
    serial, t_serial = timed(lambda: both(1))
    parallel, t_parallel = timed(lambda: both(workers))
    rows.append(
        (
            f"PESQ wb + STOI, {n_quality} x 3 s ({workers} workers)",
            t_serial,
            t_parallel,
            float(np.nanmax(np.abs(serial - parallel))),
        )
    )

    print(
        f"{'metric':42s} {'reference s':>12s} {'speechbench s':>14s} "
        f"{'ratio':>8s} {'max |diff|':>11s}"
    )
    for name, t_ref, t_ours, diff in rows:
        print(f"{name:42s} {t_ref:12.3f} {t_ours:14.3f} {t_ref / t_ours:7.1f}x {diff:11.2e}")
    print("(PESQ + STOI row: 'reference' is the serial loop, 'speechbench' the parallel pool)")
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
