"""``speechbench score METRIC --ref ... --hyp ...``: score your own outputs, no upstream.

The lead's CLI registers :func:`score_command` as ``app.command("score")``. Inputs are
read by :mod:`speechbench.score_io` according to the metric's declared input kind;
the result is the metric value, a bootstrap confidence interval (percentile, over
test items) and the metric's metadata, as a table or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from speechbench import score_io
from speechbench.errors import ConfigError
from speechbench.metrics.base import MetricSpec, get_metric

_AUDIO_SEPARATION = {"si_sdr", "sdr", "snr", "si_sdri"}
_AUDIO_QUALITY = {"pesq_wb", "pesq_nb", "stoi", "estoi"}
_AUDIO_F0 = {"f0_rmse", "f0_corr", "msep", "vde"}


def _padded(signals: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([s.size for s in signals])
    batch = np.zeros((len(signals), lengths.max()))
    for row, signal in enumerate(signals):
        batch[row, : signal.size] = signal
    return batch, lengths


def _f0_pairs(refs: list[np.ndarray], hyps: list[np.ndarray], rate: int):
    """F0 contours on a shared frame grid: equal-length audio frame by frame, otherwise
    along the DTW path of the mel cepstra (generated speech is not time-aligned)."""
    import librosa

    from speechbench.metrics.generation import f0_contour, mel_cepstrum

    ref_f0, hyp_f0 = [], []
    for ref, hyp in zip(refs, hyps, strict=True):
        a, b = f0_contour(ref, rate), f0_contour(hyp, rate)
        if a.size != b.size:
            cep_a, cep_b = mel_cepstrum(ref, rate)[:, 1:], mel_cepstrum(hyp, rate)[:, 1:]
            _, path = librosa.sequence.dtw(X=cep_a.T, Y=cep_b.T, metric="euclidean")
            path = path[::-1]
            a, b = a[np.minimum(path[:, 0], a.size - 1)], b[np.minimum(path[:, 1], b.size - 1)]
        ref_f0.append(a)
        hyp_f0.append(b)
    return ref_f0, hyp_f0


def _audio_inputs(spec: MetricSpec, ref: Path, hyp: Path, mix: Path | None, workers: int | None):
    """(positional inputs, keyword inputs, ids) for a metric over two audio folders."""
    if spec.name == "si_sdri" and mix is None:
        raise ConfigError("si_sdri needs --mix, the folder of input mixtures")
    (refs, hyps, *rest), keys, rate = score_io.load_audio_pairs(
        ref, hyp, mix if spec.name == "si_sdri" else None
    )
    if spec.name in _AUDIO_SEPARATION:
        for key, r, h, *m in zip(keys, refs, hyps, *rest, strict=True):
            if r.size != h.size or (m and m[0].size != r.size):
                raise ConfigError(
                    f"{key}: reference and output differ in length; trim them equally"
                )
        ref_batch, lengths = _padded(refs)
        hyp_batch, _ = _padded(hyps)
        args: tuple = (hyp_batch, ref_batch)
        if rest:
            args = (*args, _padded(rest[0])[0])
        return args, {"lengths": lengths}, keys
    if spec.name in _AUDIO_QUALITY:
        return (refs, hyps), {"sample_rate": rate, "ids": keys, "workers": workers}, keys
    if spec.name == "sdi":
        return (refs, hyps), {"sample_rate": rate, "ids": keys}, keys
    if spec.name == "mcd":
        from speechbench.metrics.generation import mel_cepstrum

        return (
            ([mel_cepstrum(r, rate) for r in refs], [mel_cepstrum(h, rate) for h in hyps]),
            {},
            keys,
        )
    if spec.name in _AUDIO_F0:
        return _f0_pairs(refs, hyps, rate), {}, keys
    raise ConfigError(f"metric {spec.name!r} declares audio input but score has no reader for it")


def _inputs(spec, ref, hyp, trials, mix, normalize, workers) -> tuple[tuple, dict, list[str]]:
    kind = spec.inputs.split("+")[0]
    if kind == "trials":
        trial_file = trials or ref
        if trial_file is None:
            raise ConfigError(f"{spec.name} needs --trials (or --ref) with the trial list")
        args, keys = score_io.load_trials(trial_file, hyp)
        return args, {}, keys
    if ref is None:
        raise ConfigError(f"{spec.name} needs --ref")
    if kind == "text":
        norm = None
        if normalize:
            from speechbench.text import normalize as norm
        args, keys = score_io.load_text(ref, hyp, norm)
    elif kind == "labels":
        args, keys = score_io.load_labels(ref, hyp)
    elif kind == "values":
        args, keys = score_io.load_values(ref, hyp, need_systems=spec.inputs.endswith("+systems"))
    elif kind == "tagging":
        args, keys = score_io.load_tagging(ref, hyp)
    elif kind == "lid":
        args, keys = score_io.load_lid(ref, hyp)
    elif kind == "events":
        args, keys = score_io.load_events(ref, hyp)
    elif kind == "sed_scores":
        return score_io.load_sed_scores(ref, hyp)
    elif kind == "embeddings":
        args, keys = score_io.load_embeddings(ref, hyp)
    elif kind == "audio":
        return _audio_inputs(spec, ref, hyp, mix, workers)
    else:
        raise ConfigError(f"metric {spec.name!r} cannot be scored from files (Python API only)")
    return args, {}, keys


def _details(spec: MetricSpec, args: tuple, kwargs: dict, keys: list[str]) -> dict[str, Any]:
    if spec.name == "lwlrap":
        from speechbench.metrics.tagging import lwlrap_per_class

        per_class, weights = lwlrap_per_class(*args)
        return {"per_class": per_class.tolist(), "class_weights": weights.tolist()}
    if spec.inputs == "events":
        from speechbench.metrics.sed import sed_metrics

        return {"class_wise": sed_metrics(*args)["class_wise"]}
    if spec.inputs == "sed_scores":
        from speechbench.metrics.sed import psds_scenario1

        return {"per_class_psds": psds_scenario1(*args, **kwargs).per_class}
    return {}


def _paired(
    spec,
    args,
    kwargs,
    keys,
    ref,
    compare,
    trials,
    mix,
    normalize,
    workers,
    bootstrap,
    confidence,
    seed,
) -> dict[str, Any]:
    """Paired bootstrap test of --hyp (run A) against --compare (run B) on the same items."""
    from speechbench.metrics.bootstrap import paired_bootstrap_test

    args_b, kwargs_b, keys_b = _inputs(spec, ref, compare, trials, mix, normalize, workers)
    if keys_b != keys:
        raise ConfigError(
            f"{compare}: items differ from --hyp's; a paired test needs the same ones"
        )
    test = paired_bootstrap_test(
        spec,
        args,
        args_b,
        n_resamples=bootstrap or 1000,
        confidence=confidence,
        seed=seed,
        **kwargs,
    )
    return {
        "compare_value": test.value_b,
        "delta": test.delta,
        "delta_low": test.delta_low,
        "delta_high": test.delta_high,
        "hyp_is_better": test.a_is_better,
        "p_value": test.p_value,
    }


def score_command(
    metric: Annotated[
        str,
        typer.Argument(help="metric name, e.g. wer, eer, si_sdr (see `speechbench list metrics`)"),
    ],
    hyp: Annotated[
        Path, typer.Option("--hyp", help="system output: text/label/score file or audio folder")
    ],
    ref: Annotated[
        Path | None, typer.Option("--ref", help="reference file or audio folder")
    ] = None,
    trials: Annotated[
        Path | None,
        typer.Option(
            "--trials", help="trial list for eer/min_dcf (`enroll test target|nontarget`)"
        ),
    ] = None,
    mix: Annotated[Path | None, typer.Option("--mix", help="mixture folder, for si_sdri")] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="a second run's output: paired bootstrap test hyp vs this"),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    bootstrap: Annotated[
        int, typer.Option(help="bootstrap resamples for the interval; 0 = none")
    ] = 1000,
    confidence: Annotated[float, typer.Option(help="confidence level of the interval")] = 0.95,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
    normalize: Annotated[
        bool, typer.Option(help="normalise text first (speechbench.text)")
    ] = False,
    p_target: Annotated[float | None, typer.Option(help="min_dcf / cavg target prior")] = None,
    c_miss: Annotated[float, typer.Option(help="min_dcf / cavg miss cost")] = 1.0,
    c_fa: Annotated[float, typer.Option(help="min_dcf / cavg false-alarm cost")] = 1.0,
    workers: Annotated[
        int | None, typer.Option(help="processes for PESQ/STOI (default: all cores)")
    ] = None,
) -> None:
    """Score your own outputs against references with one registered metric."""
    from speechbench.metrics.bootstrap import bootstrap_ci, mean_ci

    if output_format not in ("table", "json"):
        raise ConfigError(f"--format must be 'table' or 'json', got {output_format!r}")
    spec = get_metric(metric)
    args, kwargs, keys = _inputs(spec, ref, hyp, trials, mix, normalize, workers)
    if spec.name in ("min_dcf", "cavg"):
        kwargs.update(c_miss=c_miss, c_fa=c_fa)
        if p_target is not None:
            kwargs["p_target"] = p_target
    interval = None
    if spec.level == "utterance":
        values = spec.fn(*args, **kwargs)
        values = np.asarray(values.detach() if hasattr(values, "detach") else values, float)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise ConfigError(f"{spec.name}: no utterance could be scored (all NaN)")
        value = float(finite.mean())
        if bootstrap and finite.size >= 2:
            interval = mean_ci(values, bootstrap, confidence, seed)
        unscored = int((~np.isfinite(values)).sum())
    else:
        value = float(spec.fn(*args, **kwargs))
        if not np.isfinite(value):
            raise ConfigError(
                f"{spec.name} is undefined on these inputs (e.g. an error rate with no "
                "reference event, or a single class); check the reference file"
            )
        if bootstrap and len(keys) >= 2:
            interval = bootstrap_ci(
                spec, *args, n_resamples=bootstrap, confidence=confidence, seed=seed, **kwargs
            )
        unscored = 0
    result: dict[str, Any] = {
        "metric": spec.name,
        "value": value,
        "ci_low": interval.low if interval else None,
        "ci_high": interval.high if interval else None,
        "confidence": confidence if interval else None,
        "items": len(keys),
        "unscored_items": unscored,
        "higher_is_better": spec.higher_is_better,
        "level": spec.level,
        "definition": spec.definition,
    }
    if compare is not None:
        result.update(
            _paired(
                spec,
                args,
                kwargs,
                keys,
                ref,
                compare,
                trials,
                mix,
                normalize,
                workers,
                bootstrap,
                confidence,
                seed,
            )
        )
    if output_format == "json":
        typer.echo(json.dumps({**result, **_details(spec, args, kwargs, keys)}, indent=2))
        return
    from tabulate import tabulate

    typer.echo(tabulate([[k, v] for k, v in result.items()], tablefmt="simple", floatfmt=".4f"))
