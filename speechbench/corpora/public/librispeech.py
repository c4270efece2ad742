"""LibriSpeech (OpenSLR 12): read English audiobooks, 16 kHz FLAC, CC-BY-4.0.

Parsed by lhotse's ``prepare_librispeech``. Splits follow SUPERB ASR: train-clean-100
-> train, dev-clean -> dev, test-clean -> test; a subclass may list more parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.lhotse_bridge import run_recipe, to_utterances
from speechbench.corpora.public.local import LocalCorpus


class LibriSpeech(LocalCorpus):
    name = "librispeech"
    license = "CC-BY-4.0"
    description = "LibriSpeech ASR corpus (OpenSLR 12)"
    citation = (
        "Panayotov et al., LibriSpeech: an ASR corpus based on public domain audio books, "
        "ICASSP 2015"
    )
    sample_rate = 16000
    provides = ("text", "speaker")
    env_var = "SPEECHBENCH_LIBRISPEECH_DIR"
    layout = (
        "DIR/{train-clean-100,dev-clean,test-clean}/SPEAKER/CHAPTER/"
        "SPEAKER-CHAPTER.trans.txt and SPEAKER-CHAPTER-NNNN.flac (the LibriSpeech/ folder)"
    )
    parts: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": ("train-clean-100",),
        "dev": ("dev-clean",),
        "test": ("test-clean",),
    }

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        split_of = {part: split for split, parts in self.parts.items() for part in parts}
        self.expect(source, *split_of)
        manifests = run_recipe(
            self.name, "prepare_librispeech", corpus_dir=source, dataset_parts=sorted(split_of)
        )
        records: list[Utterance] = []
        for part, split in split_of.items():
            part_records = to_utterances(manifests[part], split, language="en")
            for record in part_records:
                record.labels["subset"] = part
            records += part_records
        return records
