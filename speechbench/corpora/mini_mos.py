"""mini-mos: real read speech under real and synthetic degradations, with quality labels.

Clean speech: Asterisk prompts (en/es/fr/it/ru, 8 kHz, resampled to 16 kHz). Each clean
utterance appears in ``VERSIONS_PER_CLEAN`` conditions drawn from ``CONDITIONS``: additive
noise at -5..30 dB SNR, band-limiting, the GSM 06.10 codec, clipping, packet loss,
spectral-subtraction output, or clean. Noise sources are real (babble from other prompts,
music, animal and desk sounds) and synthetic (coloured noise, hum, traffic, wind).

Labels per file: DNSMOS P.835 SIG/BAK/OVRL (+ P.808) from the ONNX models shipped in the
PyPI ``speechmos`` wheel — the primary, non-intrusive targets (speech / noise / overall, as
3QUEST S-/N-/G-MOS) — and intrusive PESQ-WB, STOI and the speech distortion index against
the clean reference as auxiliary pseudo-labels.

Splits are the shared ones (speechbench.corpora.splits): a clean prompt, a babble
prompt, a music track and an event sound are used only in their own shared split, so
nothing here is trained on that another corpus tests on (and the reverse). Noise *kinds*
per split still differ (``NOISE_SOURCES``: test has traffic and desk sounds that train
lacks). ``labels["sources"]`` lists the clean prompt and every recording its noise can
come from.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import soundfile as sf
from scipy import linalg
from scipy import signal as sps
from tqdm import tqdm

from speechbench import atomic
from speechbench.audio import read_audio, write_audio
from speechbench.corpora import degrade, noises
from speechbench.corpora.asterisk import LICENSES, Prompt, asterisk_prompts
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.prompts import prompt_split
from speechbench.corpora.sounds import (
    SoundSource,
    event_sources,
    read_sound,
    shared_sound_splits,
    sound_id,
    trim_silence,
)
from speechbench.errors import CorpusError
from speechbench.evaluators.dnsmos import dnsmos_scores  # the one DNSMOS scorer
from speechbench.hashing import stable_int

RATE = 16000
# clean lengths (s) that DNSMOS scores with a single 9.01 s window (see MiniMos.plan)
CLEAN_DURATIONS = ((2.26, 2.75), (4.51, 5.5), (9.01, 11.0))
CLEAN_RMS = 10 ** (-30 / 20)  # -30 dBFS: headroom for noise at -5 dB SNR and clipping gain

# Noise kinds per split. Real ones ("babble", "music", the event sets) use only the
# recordings of that shared split: babble prompts, music tracks and event files of it.
NOISE_SOURCES: dict[str, tuple[str, ...]] = {
    "train": ("white", "brown", "hum", "babble", "music", "animals"),
    "dev": ("pink", "wind", "babble", "music", "instruments"),
    "test": ("traffic", "babble", "music", "desk"),
}
SYNTHETIC_NOISES = ("white", "pink", "brown", "hum", "traffic", "wind")
EVENT_SETS = {
    "animals": ("animal", "bird"),
    "instruments": ("instrument",),
    "desk": ("notification",),
}
# condition -> weight of drawing it
CONDITIONS: dict[str, float] = {
    "clean": 0.08,
    "noise": 0.34,
    "enhanced": 0.14,
    "bandlimit": 0.11,
    "codec": 0.11,
    "clipping": 0.11,
    "packet_loss": 0.11,
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


# --- labels -------------------------------------------------------------------------
# TODO(lead): use speechbench.metrics.quality once merged (PESQ / STOI / SDI live there).


def speech_distortion_index(
    clean: np.ndarray, processed: np.ndarray, half_taps: int = 8, frame_ms: float = 32.0
) -> float:
    """Speech distortion index v_sd = E[(x - x_nr)^2] / E[x^2] (J. Chen, J. Benesty, Y. Huang,
    S. Doclo, "New insights into the noise reduction Wiener filter", IEEE TASLP 14(4), 2006),
    with x the clean speech and x_nr the speech component of the processed signal.

    For a black-box system x_nr is estimated in two least-squares steps: (1) the processed
    signal, delay-aligned, is projected on FIR-filtered copies of x (2*half_taps+1 taps),
    which captures time-invariant filtering (band-limit, codec colouring); (2) that estimate
    gets one gain per ``frame_ms`` frame, which captures time-varying gating (packet loss,
    spectral subtraction, clipping). Additive noise uncorrelated with x adds only the small
    projection bias of ~E_noise / frame_samples; lost or attenuated speech counts in full."""
    x = clean.astype(np.float64)
    z = processed.astype(np.float64)
    n = len(x)
    corr = sps.correlate(z, x, mode="full", method="fft")  # corr[n-1+k] = sum_t z[t+k] x[t]
    max_lag = int(0.025 * RATE)
    window = corr[n - 1 - max_lag : n + max_lag]
    lag = int(np.argmax(np.abs(window))) - max_lag
    z = np.roll(z, -lag)
    if lag > 0:
        z[-lag:] = 0.0
    elif lag < 0:
        z[:-lag] = 0.0
    auto = sps.correlate(x, x, mode="full", method="fft")[n - 1 : n + 2 * half_taps]
    cross = sps.correlate(z, x, mode="full", method="fft")[
        n - 1 - half_taps : n + half_taps
    ]  # r_zx(i) for i = -L..L
    auto[0] *= 1 + 1e-9  # keeps the Toeplitz system solvable for band-limited x
    taps = linalg.solve_toeplitz(auto, cross)
    speech_part = np.convolve(x, taps)[half_taps : half_taps + n]
    hop = int(RATE * frame_ms / 1000)
    for start in range(0, n, hop):
        seg = speech_part[start : start + hop]
        power = float(seg @ seg)
        if power > 1e-12:
            speech_part[start : start + hop] = seg * (float(z[start : start + hop] @ seg) / power)
    return float(np.sum((x - speech_part) ** 2) / np.sum(x**2))


def quality_labels(clean: np.ndarray, processed: np.ndarray) -> dict[str, Any]:
    from pesq import pesq
    from pesq.cypesq import PesqError
    from pystoi import stoi

    try:
        pesq_wb: float | None = round(float(pesq(RATE, clean, processed, "wb")), 4)
    except PesqError:  # e.g. no utterance detected in a heavily degraded file
        pesq_wb = None
    return {
        "mos": dnsmos_scores(processed),
        "pesq_wb": pesq_wb,
        "stoi": round(float(stoi(clean, processed, RATE, extended=False)), 4),
        "sdi": round(speech_distortion_index(clean, processed), 5),
    }


# --- the corpus ---------------------------------------------------------------------


class MiniMos(Corpus):
    """Speech quality (MOS) prediction corpus built offline in a few minutes."""

    name = "mini-mos"
    # 2: the shared split (1 split prompts and noises its own way); 3: 1540 files (issue 13:
    # wider one-window clean lengths, 5 conditions per clean utterance, 2 build processes)
    version = "3"
    license = "CC-BY-SA-3.0 speech; noises CC0/CC-BY(-SA)/GPL/LGPL, see ATTRIBUTION"
    description = (
        "Real Asterisk prompts (5 languages) under noise, band-limit, GSM codec, clipping, "
        "packet loss and spectral subtraction; DNSMOS SIG/BAK/OVRL + PESQ/STOI/SDI labels"
    )
    sample_rate = RATE
    provides = ("speaker", "language", "text", "labels.mos")

    LANGUAGES: ClassVar[tuple[str, ...]] = ("en", "es", "fr", "it", "ru")
    CLEAN_PER_SPLIT: ClassVar[dict[str, int]] = {"train": 200, "dev": 28, "test": 80}
    BABBLE_PROMPTS_PER_SPLIT: ClassVar[int] = 12
    VERSIONS_PER_CLEAN: ClassVar[int] = 5
    SEED: ClassVar[str] = "mini-mos-1"
    # labelling (DNSMOS ~0.7 s CPU per file, PESQ, STOI, SDI) runs in this many processes
    BUILD_JOBS: ClassVar[int] = 2

    # -- plan ---------------------------------------------------------------------------
    def _prompts_with_durations(self) -> list[tuple[Prompt, float]]:
        prompts = []
        for language in self.LANGUAGES:
            for prompt in asterisk_prompts(language):
                try:
                    seconds = sf.info(str(prompt.path)).duration
                except Exception as exc:
                    raise CorpusError(f"{prompt.path}: cannot read audio ({exc})") from None
                prompts.append((prompt, seconds))
        # interleave languages in a stable pseudo-random order
        prompts.sort(key=lambda item: stable_int(self.SEED, item[0].language, item[0].name))
        return prompts

    def plan(self) -> tuple[dict[str, list[Prompt]], dict[str, list[Prompt]]]:
        """Clean prompts and babble prompts per split, all disjoint.

        Clean prompts are 2.26-2.75 s, 4.51-5.5 s or 9.01-11 s long: DNSMOS tiles a clip
        by doubling it until it reaches 9.01 s and scores floor(seconds) - 8 windows of 9 s
        at 1 s hops, so a clip that tiles to 9.01-11 s gets exactly one window (one ONNX
        pass) instead of up to eight; babble takes the rest."""
        clean_pool: dict[str, list[Prompt]] = {split: [] for split in self.CLEAN_PER_SPLIT}
        babble_pool: dict[str, list[Prompt]] = {split: [] for split in self.CLEAN_PER_SPLIT}
        for prompt, seconds in self._prompts_with_durations():
            split = prompt_split(prompt)  # the split every corpus gives this recording
            if any(lo <= seconds < hi for lo, hi in CLEAN_DURATIONS):
                clean_pool[split].append(prompt)
            elif seconds >= 1.0:
                babble_pool[split].append(prompt)
        clean, babble = {}, {}
        for split, count in self.CLEAN_PER_SPLIT.items():
            if (
                len(clean_pool[split]) < count
                or len(babble_pool[split]) < self.BABBLE_PROMPTS_PER_SPLIT
            ):
                raise CorpusError(
                    f"corpus {self.name} {split}: {len(clean_pool[split])} clean / "
                    f"{len(babble_pool[split])} babble prompts of that shared split available, "
                    f"{count} / {self.BABBLE_PROMPTS_PER_SPLIT} needed"
                )
            clean[split] = clean_pool[split][:count]
            babble[split] = babble_pool[split][: self.BABBLE_PROMPTS_PER_SPLIT]
        return clean, babble

    def noise_files(
        self, kind: str, split: str, babble: dict[str, list[Prompt]], events: list[SoundSource]
    ) -> list[str]:
        """Source ids a real noise kind draws from in ``split`` ([] for synthetic noise)."""
        if kind == "babble":
            return [p.source_id for p in babble[split]]
        shared = shared_sound_splits()
        labels = ("music",) if kind == "music" else EVENT_SETS.get(kind, ())
        return sorted(
            sound_id(s) for s in events if s.label in labels and shared[sound_id(s)] == split
        )

    # -- noise ----------------------------------------------------------------------------
    def _noise(
        self,
        source: str,
        n: int,
        rng: np.random.Generator,
        babble: dict[str, list[Prompt]],
        events: list[SoundSource],
    ) -> np.ndarray:
        kind, _, detail = source.partition("/")
        if kind in ("white", "pink", "brown"):
            return noises.coloured_noise(kind, n, rng)
        if kind == "hum":
            return noises.unit_rms(
                noises.hum(n, RATE, rng) + 0.1 * noises.coloured_noise("pink", n, rng)
            )
        if kind == "traffic":
            return noises.traffic(n, RATE, rng)
        if kind == "wind":
            return noises.wind(n, RATE, rng)
        if kind == "babble":
            return noises.babble([_load(p.path) for p in babble[detail]], n, RATE, rng)
        files = set(self.noise_files(kind, detail, babble, events))
        chosen = [s for s in events if sound_id(s) in files]
        if kind == "music":
            if not chosen:
                raise CorpusError(f"no {detail} music track in asterisk-moh-opsound-wav")
            track = chosen[int(rng.integers(len(chosen)))]
            return noises.excerpt(_load(track.path), n, rng)
        if kind in EVENT_SETS:
            sounds = [trim_silence(_load(s.path), RATE) for s in chosen]
            return noises.sequence(sounds, n, RATE, rng)
        raise CorpusError(f"unknown noise source {source!r}")

    def _render(
        self,
        clean: np.ndarray,
        condition: str,
        split: str,
        rng: np.random.Generator,
        babble: dict[str, list[Prompt]],
        events: list[SoundSource],
    ) -> tuple[np.ndarray, dict[str, Any]]:
        info: dict[str, Any] = {"degradation": condition, "snr_db": None, "noise_source": None}
        if condition in ("noise", "enhanced"):
            kinds = [
                k
                for k in NOISE_SOURCES[split]
                if k in SYNTHETIC_NOISES or self.noise_files(k, split, babble, events)
            ]
            kind = kinds[int(rng.integers(len(kinds)))]
            source = kind if kind in SYNTHETIC_NOISES else f"{kind}/{split}"
            snr = float(rng.uniform(-5, 30) if condition == "noise" else rng.uniform(-5, 15))
            noise = self._noise(source, len(clean), rng, babble, events)
            out = degrade.mix_at_snr(clean, noise, snr)
            info.update(snr_db=round(snr, 2), noise_source=source)
            if condition == "enhanced":
                out = degrade.spectral_subtraction(out, RATE)
                info["enhancer"] = "spectral_subtraction"
            return out, info
        if condition == "bandlimit":
            low, high = float(rng.uniform(200, 500)), float(rng.uniform(1000, 2500))
            info["band_hz"] = [round(low), round(high)]
            return degrade.band_limit(clean, RATE, low, high), info
        if condition == "codec":
            info["codec"] = "gsm-06.10"
            return degrade.gsm_codec(clean, RATE), info
        if condition == "clipping":
            fraction = float(rng.uniform(0.01, 0.2))
            info["clipped_fraction"] = round(fraction, 4)
            return degrade.clip(clean, fraction), info
        if condition == "packet_loss":
            rate = float(rng.uniform(0.05, 0.3))
            info["loss_rate"] = round(rate, 4)
            return degrade.packet_loss(clean, RATE, rate, rng)[0], info
        if condition == "clean":
            return clean.copy(), info
        raise CorpusError(f"unknown degradation {condition!r}")

    # -- build ----------------------------------------------------------------------------
    def build(self, root: Path) -> tuple[list[Utterance], str]:
        clean_sets, babble = self.plan()
        events = event_sources()
        conditions = list(CONDITIONS)
        weights = np.array(list(CONDITIONS.values()))
        weights /= weights.sum()
        jobs = []
        for split, prompts in clean_sets.items():
            for prompt in prompts:
                clean_id = f"{prompt.language}/{prompt.name}"
                rng = np.random.default_rng(stable_int(self.SEED, clean_id))
                chosen = rng.choice(
                    len(conditions), size=self.VERSIONS_PER_CLEAN, replace=False, p=weights
                )
                for k, index in enumerate(sorted(chosen)):
                    jobs.append((split, prompt, clean_id, conditions[index], k))
        from joblib import Parallel, delayed

        items = []
        for split, prompt, clean_id, condition, k in jobs:
            utt_id = f"{prompt.language}-{_slug(prompt.name)}-{k}"
            items.append((split, prompt, clean_id, condition, utt_id))
        # each item has its own seed, so the files do not depend on the number of processes
        run = Parallel(n_jobs=self.BUILD_JOBS, return_as="generator")
        labelled = run(
            delayed(self._build_item)(root, item, self.SEED, babble, events) for item in items
        )
        records = []
        used_noises: set[str] = set()
        for (split, prompt, _, _, utt_id), (rel, labels) in tqdm(
            zip(items, labelled, strict=True),
            total=len(items),
            desc=f"build {self.name}",
            unit="file",
        ):
            if labels.get("noise_source"):
                used_noises.add(labels["noise_source"])
            records.append(
                Utterance(
                    id=utt_id,
                    path=rel,
                    sample_rate=RATE,
                    duration=round(sf.info(str(root / rel)).frames / RATE, 4),
                    split=split,
                    speaker=prompt.speaker,
                    language=prompt.language,
                    text=prompt.text,
                    labels=labels,
                )
            )
        return records, self.attribution(clean_sets, babble, used_noises, events)

    def _build_item(
        self,
        root: Path,
        item: tuple[str, Prompt, str, str, str],
        seed: str,
        babble: dict[str, list[Prompt]],
        events: list[SoundSource],
    ) -> tuple[str, dict[str, Any]]:
        """Render, write and label one file (in a worker process): (relative path, labels).
        A file whose audio and labels exist is kept (restart)."""
        split, prompt, clean_id, condition, utt_id = item
        rel = Path("audio") / split / f"{utt_id}.wav"
        label_path = root / "labels" / f"{utt_id}.json"
        if (root / rel).exists() and label_path.exists():  # restart: keep finished items
            return rel.as_posix(), json.loads(label_path.read_text(encoding="utf-8"))
        rng = np.random.default_rng(stable_int(seed, utt_id, condition))
        clean = _load(prompt.path)
        clean = clean * (CLEAN_RMS / max(float(np.sqrt(np.mean(clean**2))), 1e-9))
        out, labels = self._render(clean, condition, split, rng, babble, events)
        peak = float(np.max(np.abs(out)))
        if peak > 0.99:  # peaky noise: scale mixture and reference alike, never clip
            clean, out = clean * (0.99 / peak), out * (0.99 / peak)
        write_audio(root / rel, out, RATE)
        written, _ = read_audio(root / rel, RATE)  # label exactly what is stored
        labels.update(quality_labels(clean.astype(np.float32), written))
        labels.update(clean_id=clean_id, split_group=split)
        noise = labels.get("noise_source")
        kind = noise.partition("/")[0] if noise else None
        noise_ids = self.noise_files(kind, split, babble, events) if kind else []
        labels["sources"] = [prompt.source_id, *noise_ids]
        atomic.write_json(label_path, labels)
        return rel.as_posix(), labels

    def attribution(
        self,
        clean_sets: dict[str, list[Prompt]],
        babble: dict[str, list[Prompt]],
        used_noises: set[str],
        events: list[SoundSource],
    ) -> str:
        languages = sorted({p.language for prompts in clean_sets.values() for p in prompts})
        lines = [
            f"{self.name} v{self.version}: generated by speechbench; sources and licences.",
            "",
            "Speech (clean utterances and babble noise):",
        ]
        for language in languages:
            lines.append(
                f"  asterisk-core-sounds-{language}-wav (Debian, Digium/Sangoma Asterisk "
                f"prompts): {LICENSES[language]}"
            )
        lines += ["", "Real noise recordings:"]
        used_files: set[str] = set()
        for noise in sorted(used_noises):
            kind, _, split = noise.partition("/")
            if kind in ("music", *EVENT_SETS):
                used_files.update(self.noise_files(kind, split, babble, events))
        for s in events:
            if sound_id(s) in used_files:
                lines.append(f"  {s.key} ({s.origin}): {s.license}; {s.copyright}")
        synthetic = sorted(n for n in used_noises if n in SYNTHETIC_NOISES)
        lines += [
            "",
            f"Synthetic noises (generated, no licence needed): {', '.join(synthetic) or 'none'}",
            "GSM 06.10 coding: sox/libgsm at build time (no data shipped).",
            "Labels: DNSMOS P.835/P.808 ONNX models from PyPI speechmos (MIT); PESQ (pesq, "
            "ITU-T P.862.2), STOI (pystoi, MIT), speech distortion index (speechbench).",
        ]
        return "\n".join(lines)


@lru_cache(maxsize=256)
def _load(path: Path) -> np.ndarray:
    """A source recording at 16 kHz (cached: babble and music reuse the same files)."""
    return read_sound(path, RATE)


__all__ = ["MiniMos", "dnsmos_scores", "speech_distortion_index", "quality_labels"]
