"""FSDKaggle2019: Freesound and Flickr clips tagged with 80 AudioSet classes (multi-label),
44.1 kHz mono; audio CC-BY / CC0 per clip, labels CC-BY-4.0.

lhotse has no recipe, so this small parser reads the post-competition metadata. Splits:
curated train -> train minus dev, test -> test; dev is 10% of the curated clips (stable
hash). The noisy train set (Flickr, unverified labels) is left out by default; set
``include_noisy = True`` in a subclass to add it to train with ``labels["noisy"] = True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import (
    LocalCorpus,
    audio_info,
    read_rows,
    require_columns,
    split_by_hash,
)

META = "FSDKaggle2019.meta"


class FsdKaggle2019(LocalCorpus):
    name = "fsdkaggle2019"
    license = "CC-BY-4.0 (labels); audio CC-BY / CC0 per clip (see the metadata license column)"
    description = "FSDKaggle2019 audio tagging dataset (Freesound Audio Tagging 2019)"
    citation = "Fonseca et al., Audio tagging with noisy labels and minimal supervision, DCASE 2019"
    sample_rate = 44100
    provides = ("labels.tags",)
    env_var = "SPEECHBENCH_FSDKAGGLE2019_DIR"
    layout = (
        f"DIR/{META}/{{train_curated,test}}_post_competition.csv ('fname,labels,...', labels "
        "comma-separated in quotes), DIR/FSDKaggle2019.audio_train_curated/*.wav and "
        "DIR/FSDKaggle2019.audio_test/*.wav"
    )
    dev_fraction: ClassVar[float] = 0.1
    include_noisy: ClassVar[bool] = False

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        sets = [
            ("train_curated", "FSDKaggle2019.audio_train_curated"),
            ("test", "FSDKaggle2019.audio_test"),
        ]
        if self.include_noisy:
            sets.insert(1, ("train_noisy", "FSDKaggle2019.audio_train_noisy"))
        self.expect(
            source,
            *(f"{META}/{s}_post_competition.csv" for s, _ in sets),
            *(folder for _, folder in sets),
        )
        records = []
        for subset, folder in sets:
            table = source / META / f"{subset}_post_competition.csv"
            rows = read_rows(table)
            require_columns(table, rows, "fname", "labels")
            for row in rows:
                path = source / folder / row["fname"]
                rate, duration = audio_info(path, str(table))
                clip = Path(row["fname"]).stem
                if subset == "test":
                    split = "test"
                elif subset == "train_noisy":
                    split = "train"
                else:
                    split = split_by_hash(clip, self.dev_fraction)
                labels = {"tags": [t.strip() for t in row["labels"].split(",") if t.strip()]}
                if row.get("license"):
                    labels["license"] = row["license"]
                if subset == "train_noisy":
                    labels["noisy"] = True
                records.append(
                    Utterance(
                        id=f"{subset}-{clip}",
                        path=str(path),
                        sample_rate=rate,
                        duration=duration,
                        split=split,
                        labels=labels,
                    )
                )
        return records
