"""AISHELL-3: 218 Mandarin speakers, 44.1 kHz, Apache-2.0 (OpenSLR 93).

Parsed by lhotse's ``prepare_aishell3`` (text is the Hanzi of ``content.txt``). The
official release has train and test only: dev is 5% of the train utterances chosen by
a stable hash of the utterance id.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.lhotse_bridge import run_recipe, to_utterances
from speechbench.corpora.public.local import LocalCorpus, split_by_hash


class Aishell3(LocalCorpus):
    name = "aishell3"
    license = "Apache-2.0"
    description = "AISHELL-3 multi-speaker Mandarin corpus (OpenSLR 93)"
    citation = "Shi et al., AISHELL-3: A Multi-speaker Mandarin TTS Corpus, Interspeech 2021"
    sample_rate = 44100
    provides = ("text", "speaker")
    env_var = "SPEECHBENCH_AISHELL3_DIR"
    layout = (
        "DIR/spk-info.txt, DIR/train/label_train-set.txt, DIR/{train,test}/content.txt "
        "and DIR/{train,test}/wav/SSBNNNN/SSBNNNNNNNN.wav"
    )
    dev_fraction: ClassVar[float] = 0.05

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(
            source,
            "spk-info.txt",
            "train/label_train-set.txt",
            "train/content.txt",
            "test/content.txt",
        )
        manifests = run_recipe(self.name, "prepare_aishell3", corpus_dir=source)
        train = to_utterances(
            manifests["train"], lambda sup: split_by_hash(sup.id, self.dev_fraction), "zh"
        )
        return train + to_utterances(manifests["test"], "test", "zh")
