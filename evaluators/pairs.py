"""Score generated speech with the evaluators and the metrics layer.

:func:`score_pairs` takes generated waveforms and, optionally, their parallel ground truth,
the texts they should say and audio of the speaker they should sound like, and returns
corpus-level numbers plus one row per item. Every number comes from
:mod:`speechbench.metrics` (nothing is re-implemented here):

- ``wer`` / ``cer``: the transcriber's output against ``texts``, both through
  :func:`speechbench.text.normalize` (after dropping digit-group commas, "1,234" ->
  "1234", which Whisper writes and normalize would otherwise spell as two numbers),
  corpus-level (S + D + I) / N;
- ``spk_sim``: cosine of speaker embeddings of each output and of its speaker reference
  (one utterance, or the normalised mean embedding of several);
- ``dnsmos_sig`` / ``_bak`` / ``_ovrl`` / ``_p808``: the quality scorer's means;
- ``mcd``: MCD-DTW of :func:`~speechbench.metrics.generation.mel_cepstrum` against the
  parallel reference;
- ``f0_rmse`` / ``f0_corr`` / ``msep`` (ln-F0 MSE) / ``vde``: pYIN F0
  contours (10 ms) of output and reference,
  compared frame by frame along the same DTW path the MCD uses (mel-cepstra c1..c24,
  Euclidean), so outputs need not be time-aligned with the reference.

Utterance-level metrics are averaged over the items they could score; an item a metric
cannot score (no frame voiced in both contours) is ``None`` in its row and counted in
``unscored``, and a metric no item could score is left out: NaN is never reported as a
number. Silent outputs are an error naming the items.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from speechbench.evaluators.base import Evaluator, Wave

from speechbench.errors import AudioError, ConfigError

_DIGIT_GROUP = re.compile(r"(?<=\d),(?=\d{3}\b)")
SILENCE_PEAK = 1e-4  # about -80 dBFS: an output quieter than this everywhere is silent


@dataclass
class PairScores:
    metrics: dict[str, float]  # corpus-level numbers
    items: list[dict[str, Any]]  # one row per generated item
    evaluators: dict[str, dict[str, Any]]  # name -> record (kind, options, fingerprint)
    unscored: dict[str, int] = field(default_factory=dict)  # metric -> items it could not score


def _evaluator(spec: str | Evaluator | None, kind: str) -> Evaluator | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        from speechbench.evaluators import create

        spec = create(spec)
    if spec.kind != kind:
        raise ConfigError(f"evaluator {spec.name} is a {spec.kind} evaluator, not {kind}")
    return spec


def _numpy(wav: Wave) -> np.ndarray:
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return np.asarray(wav, dtype=np.float32)


def _check_lengths(name: str, values: Sequence[Any] | None, n: int) -> None:
    if values is not None and len(values) != n:
        raise ConfigError(f"{n} generated items but {len(values)} {name}; they must pair up")


def _mean_finite(values: list[float | None]) -> tuple[float | None, int]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return (float(np.mean(finite)) if finite else None), len(values) - len(finite)


def _speaker_embedding(embedder: Evaluator, reference: Any, rate: int) -> torch.Tensor:
    many = isinstance(reference, (list, tuple))
    embeddings = embedder.embed(list(reference) if many else [reference], rate)
    mean = embeddings.mean(0)
    return mean / mean.norm().clamp(min=1e-12)


def score_pairs(
    generated: Sequence[Wave],
    references: Sequence[Wave] | None = None,
    *,
    sample_rate: int = 16000,
    texts: Sequence[str] | None = None,
    speaker_references: Sequence[Any] | None = None,
    ids: Sequence[str] | None = None,
    transcriber: str | Evaluator | None = "whisper-tiny-en",
    speaker: str | Evaluator | None = "ge2e",
    quality: str | Evaluator | None = "dnsmos",
    spectral: bool = True,
) -> PairScores:
    """Score ``generated`` (1-D waveforms at ``sample_rate``).

    ``references``: parallel ground truth (for MCD and F0 metrics, and the default speaker
    reference); ``texts``: what each output should say (WER/CER); ``speaker_references``:
    per item a waveform or a list of waveforms of the target speaker. Pass ``None`` for an
    evaluator to skip its metrics; ``spectral=False`` skips MCD and F0.
    """
    from speechbench.metrics import generation, recognition

    from speechbench.text import normalize

    n = len(generated)
    if n == 0:
        raise ConfigError("no generated audio to score")
    _check_lengths("references", references, n)
    _check_lengths("texts", texts, n)
    _check_lengths("speaker references", speaker_references, n)
    _check_lengths("ids", ids, n)
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    waves = [_numpy(w) for w in generated]
    silent = [ids[i] for i, w in enumerate(waves) if w.size == 0 or np.abs(w).max() < SILENCE_PEAK]
    if silent:
        raise AudioError(
            f"{len(silent)} generated item(s) are silent (peak below -80 dBFS): "
            f"{', '.join(silent[:5])}{' ...' if len(silent) > 5 else ''}"
        )
    refs = [_numpy(w) for w in references] if references is not None else None
    items: list[dict[str, Any]] = [{"id": i} for i in ids]
    metrics: dict[str, float] = {}
    unscored: dict[str, int] = {}
    records: dict[str, dict[str, Any]] = {}

    def add(name: str, per_item: list[float | None]) -> None:
        for row, value in zip(items, per_item, strict=True):
            ok = value is not None and np.isfinite(value)
            row[name] = float(value) if ok else None
        mean, missing = _mean_finite(per_item)
        if missing:
            unscored[name] = missing
        if mean is not None:
            metrics[name] = mean

    asr = _evaluator(transcriber, "transcribe") if texts is not None else None
    if asr is not None:
        wanted = [normalize(_DIGIT_GROUP.sub("", t)) for t in texts]
        heard = [normalize(_DIGIT_GROUP.sub("", t)) for t in asr.transcribe(waves, sample_rate)]
        metrics["wer"] = recognition.word_error_rate(wanted, heard)
        metrics["cer"] = recognition.character_error_rate(wanted, heard)
        for row, want, got in zip(items, wanted, heard, strict=True):
            row["transcript"] = got
            row["wer"] = recognition.word_error_rate([want], [got]) if want else None
        records[asr.name] = asr.record()

    embedder = _evaluator(speaker, "speaker_embedding")
    targets = speaker_references if speaker_references is not None else refs
    if embedder is not None and targets is not None:
        generated_emb = embedder.embed(waves, sample_rate)
        target_emb = torch.stack([_speaker_embedding(embedder, t, sample_rate) for t in targets])
        add("spk_sim", list(generation.speaker_similarity(target_emb, generated_emb)))
        records[embedder.name] = embedder.record()

    scorer = _evaluator(quality, "quality")
    if scorer is not None:
        scores = scorer.score(waves, sample_rate)
        for key in scorer.keys:
            add(f"{scorer.name}_{key}", [s[key] for s in scores])
        records[scorer.name] = scorer.record()

    if spectral and refs is not None:
        import librosa

        mcd, rmse, msep, vde, corr = [], [], [], [], []
        for gen, ref in zip(waves, refs, strict=True):
            cep_gen = generation.mel_cepstrum(gen, sample_rate)
            cep_ref = generation.mel_cepstrum(ref, sample_rate)
            mcd.append(float(generation.mel_cepstral_distortion([cep_ref], [cep_gen])[0]))
            _, path = librosa.sequence.dtw(X=cep_ref[:, 1:].T, Y=cep_gen[:, 1:].T)
            path = path[::-1]
            f0_ref = generation.f0_contour(ref, sample_rate)
            f0_gen = generation.f0_contour(gen, sample_rate)
            aligned_ref = f0_ref[np.minimum(path[:, 0], len(f0_ref) - 1)]
            aligned_gen = f0_gen[np.minimum(path[:, 1], len(f0_gen) - 1)]
            with warnings.catch_warnings():  # no voiced overlap: None in the row, counted
                warnings.simplefilter("ignore")
                rmse.append(float(generation.f0_rmse([aligned_ref], [aligned_gen])[0]))
                msep.append(float(generation.pitch_mse([aligned_ref], [aligned_gen])[0]))
                corr.append(float(generation.f0_correlation([aligned_ref], [aligned_gen])[0]))
            vde.append(float(generation.voicing_decision_error([aligned_ref], [aligned_gen])[0]))
        add("mcd", mcd)
        add("f0_rmse", rmse)
        add("msep", msep)
        add("vde", vde)
        add("f0_corr", corr)

    return PairScores(metrics=metrics, items=items, evaluators=records, unscored=unscored)
