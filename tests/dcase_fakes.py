"""Generated scene/event corpora for the DCASE task tests: tone events over noise beds.

Two scenes differ in their bed (white vs. brown noise); two event classes are tones
(``low`` 400 Hz, ``high`` 2.5 kHz) with exact onsets/offsets, never two of one class
overlapping. ``tones-asc`` / ``tones-tag`` / ``tones-sed`` are three disjoint corpora
(different seeds) that each carry one label type, like the mini-dcase views.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from speechbench import registry
from speechbench.audio import write_audio
from speechbench.corpora.base import Corpus, Utterance

RATE = 16000
SECONDS = 3.0
TONES = {"low": 400.0, "high": 2500.0}


def _clip(rng: np.random.Generator, scene: str) -> tuple[np.ndarray, list[list]]:
    n = int(SECONDS * RATE)
    white = rng.standard_normal(n)
    bed = white if scene == "white" else np.cumsum(white) / 60.0
    bed = 0.02 * bed / np.abs(bed).max()
    wav = bed.copy()
    events = []
    for label, freq in TONES.items():
        cursor = 0.0
        for _ in range(int(rng.integers(0, 3))):
            onset = round(cursor + float(rng.uniform(0.05, 0.8)), 2)
            offset = round(onset + float(rng.uniform(0.3, 1.0)), 2)
            if offset > SECONDS - 0.05:
                break
            t = np.arange(int(onset * RATE), int(offset * RATE))
            wav[t] += 0.2 * np.sin(2 * np.pi * freq * t / RATE)
            events.append([label, onset, offset])
            cursor = offset
    if not events:  # every clip has an event (tags are never empty)
        t = np.arange(int(1.0 * RATE), int(1.6 * RATE))
        wav[t] += 0.2 * np.sin(2 * np.pi * TONES["low"] * t / RATE)
        events.append(["low", 1.0, 1.6])
    return wav.astype(np.float32), sorted(events, key=lambda e: (e[1], e[0]))


class ToneScenes(Corpus):
    license = "CC0-1.0 (generated)"
    sample_rate = RATE
    version = "1"
    description = "tone events over noise beds"
    keys: ClassVar[tuple[str, ...]] = ("scene", "tags", "events")
    seed: ClassVar[int] = 0
    sizes: ClassVar[dict[str, int]] = {"train": 24, "dev": 8, "test": 8}

    def build(self, root: Path):
        rng = np.random.default_rng(self.seed)
        records = []
        for split, count in self.sizes.items():
            for i in range(count):
                scene = ("white", "brown")[i % 2]
                wav, events = _clip(rng, scene)
                rid = f"{self.name}-{split}-{i:02d}"
                write_audio(root / f"{rid}.wav", wav, RATE)
                labels = {"scene": scene, "tags": sorted({e[0] for e in events}),
                          "events": events, "sources": [rid]}  # fmt: skip
                labels = {k: v for k, v in labels.items() if k in (*self.keys, "sources")}
                records.append(Utterance(rid, f"{rid}.wav", RATE, SECONDS, split, labels=labels))
        return records, "generated"


class TonesAsc(ToneScenes):
    name = "tones-asc"
    keys = ("scene",)
    seed = 1


class TonesTag(ToneScenes):
    name = "tones-tag"
    keys = ("tags",)
    seed = 2


class TonesSed(ToneScenes):
    name = "tones-sed"
    keys = ("events",)
    seed = 3


class TonesAll(ToneScenes):
    name = "tones-all"
    seed = 4


def register_fakes() -> None:
    for cls in (TonesAsc, TonesTag, TonesSed, TonesAll):
        registry.register("corpora", cls.name)(cls)
