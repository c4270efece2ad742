"""VoxLingua107: YouTube speech in 107 languages, 16 kHz, CC-BY-4.0.

lhotse has no recipe, so this small parser reads the unpacked zips: one folder per
language code for the training data and ``dev/<code>/`` for the official dev set (33
languages). The official dev set is the evaluation set, so it maps to ``test``; ``dev``
is 2% of the training videos (whole videos, chosen by a stable hash of the YouTube id,
so no video is in two splits).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import LocalCorpus, audio_info, split_by_hash


class VoxLingua107(LocalCorpus):
    name = "voxlingua107"
    license = "CC-BY-4.0"
    description = "VoxLingua107 spoken language identification corpus"
    citation = "Valk, Alumäe, VoxLingua107: a dataset for spoken language recognition, SLT 2021"
    sample_rate = 16000
    provides = ("language",)
    env_var = "SPEECHBENCH_VOXLINGUA107_DIR"
    layout = (
        "DIR/<lang>/<video>__U__S<n>---<start>-<end>.wav for training (or DIR/train/<lang>/...) "
        "and DIR/dev/<lang>/*.wav for the official dev set"
    )
    dev_fraction: ClassVar[float] = 0.02

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "dev")
        train_root = source / "train" if (source / "train").is_dir() else source
        records = []
        for lang_dir in sorted(p for p in train_root.iterdir() if p.is_dir()):
            if lang_dir.name in {"dev", "train"}:
                continue
            for wav in sorted(lang_dir.glob("*.wav")):
                video = wav.name.split("__U__")[0]
                split = split_by_hash(video, self.dev_fraction)
                records.append(self._record(wav, lang_dir.name, split, "train"))
        if not records:
            self.expect(source, "<lang>/*.wav (training data)")
        for lang_dir in sorted(p for p in (source / "dev").iterdir() if p.is_dir()):
            for wav in sorted(lang_dir.glob("*.wav")):
                records.append(self._record(wav, lang_dir.name, "test", "dev"))
        return records

    @staticmethod
    def _record(wav: Path, language: str, split: str, official: str) -> Utterance:
        rate, duration = audio_info(wav)
        return Utterance(
            id=f"{official}-{language}-{wav.stem}",
            path=str(wav),
            sample_rate=rate,
            duration=duration,
            split=split,
            language=language,
            labels={"video": wav.name.split("__U__")[0], "official_set": official},
        )
