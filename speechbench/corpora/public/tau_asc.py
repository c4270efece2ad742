"""TAU Urban Acoustic Scenes 2020 Mobile, development set (DCASE2020 task 1A).

10 s mono 44.1 kHz clips of 10 scenes in 10 cities, recorded with real (A, B, C) and
simulated (S1-S6) devices. lhotse has no recipe, so this small parser reads the
official tab-separated lists. Splits: ``fold1_train.csv`` -> train minus a dev set,
``fold1_evaluate.csv`` -> test. Dev is 10% of the train *recording locations*
(``identifier``, chosen by a stable hash) so no location is in train and dev.
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
from speechbench.errors import CorpusError


class TauAsc2020Mobile(LocalCorpus):
    name = "tau-asc2020-mobile"
    license = "custom non-commercial (TAU, see the corpus LICENSE)"
    description = "TAU Urban Acoustic Scenes 2020 Mobile, development dataset"
    citation = (
        "Heittola, Mesaros, Virtanen, Acoustic scene classification in DCASE 2020 "
        "challenge, DCASE 2020"
    )
    sample_rate = 44100
    provides = ("labels.scene",)
    env_var = "SPEECHBENCH_TAU_ASC2020_DIR"
    layout = (
        "DIR/meta.csv, DIR/evaluation_setup/fold1_{train,evaluate}.csv (tab-separated, "
        "'filename<TAB>scene_label') and DIR/audio/<scene>-<city>-<n>-<n>-<device>.wav"
    )
    dev_fraction: ClassVar[float] = 0.1

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        setup = "evaluation_setup"
        self.expect(source, "meta.csv", f"{setup}/fold1_train.csv", f"{setup}/fold1_evaluate.csv")
        meta_path = source / "meta.csv"
        meta_rows = read_rows(meta_path, delimiter="\t")
        require_columns(
            meta_path, meta_rows, "filename", "scene_label", "identifier", "source_label"
        )
        meta = {row["filename"]: row for row in meta_rows}
        records = []
        for fold_file, official in (("fold1_train.csv", "train"), ("fold1_evaluate.csv", "test")):
            fold_path = source / setup / fold_file
            rows = read_rows(fold_path, delimiter="\t")
            require_columns(fold_path, rows, "filename")
            for row in rows:
                name = row["filename"]
                if name not in meta:
                    raise CorpusError(f"{fold_path}: {name} is not in {meta_path}")
                info = meta[name]
                rate, duration = audio_info(source / name, str(fold_path))
                location = info["identifier"]
                split = "test" if official == "test" else split_by_hash(location, self.dev_fraction)
                records.append(
                    Utterance(
                        id=Path(name).stem,
                        path=str(source / name),
                        sample_rate=rate,
                        duration=duration,
                        split=split,
                        labels={
                            "scene": info["scene_label"],
                            "device": info["source_label"],
                            "city": location.split("-")[0],
                            "location": location,
                        },
                    )
                )
        return records
