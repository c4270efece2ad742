"""VoxCeleb1: 1,251 celebrities in YouTube interviews, 16 kHz, CC-BY-4.0.

Splits follow the official identification protocol (SUPERB SID): ``iden_split.txt``
marks each file 1 (train), 2 (dev) or 3 (test). lhotse's ``prepare_voxceleb`` is not
used: it downloads the verification trial list from openslr.org and splits by the
verification protocol only, so this small parser reads the local lists instead.
"""

from __future__ import annotations

from pathlib import Path

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import LocalCorpus, audio_info, read_rows
from speechbench.errors import CorpusError

IDEN_SPLITS = {"1": "train", "2": "dev", "3": "test"}


class VoxCeleb1(LocalCorpus):
    name = "voxceleb1"
    license = "CC-BY-4.0"
    description = "VoxCeleb1 speaker identification corpus"
    citation = (
        "Nagrani, Chung, Zisserman, VoxCeleb: a large-scale speaker identification "
        "dataset, Interspeech 2017"
    )
    sample_rate = 16000
    provides = ("speaker",)
    env_var = "SPEECHBENCH_VOXCELEB1_DIR"
    layout = (
        "DIR/iden_split.txt (lines 'N idXXXXX/VIDEO/NNNNN.wav'), DIR/wav/idXXXXX/VIDEO/NNNNN.wav "
        "and optionally DIR/vox1_meta.csv (tab-separated speaker metadata)"
    )

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "iden_split.txt", "wav")
        meta = self._speaker_meta(source / "vox1_meta.csv")
        split_file = source / "iden_split.txt"
        records = []
        for number, line in enumerate(split_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or fields[0] not in IDEN_SPLITS:
                raise CorpusError(
                    f"{split_file}:{number}: expected 'N idXXXXX/VIDEO/NNNNN.wav' with N in 1-3, "
                    f"got {line!r}"
                )
            rel = fields[1]
            path = source / "wav" / rel
            rate, duration = audio_info(path, f"{split_file}:{number}")
            speaker = rel.split("/")[0]
            records.append(
                Utterance(
                    id=rel.removesuffix(".wav").replace("/", "-"),
                    path=str(path),
                    sample_rate=rate,
                    duration=duration,
                    split=IDEN_SPLITS[fields[0]],
                    speaker=speaker,
                    labels=dict(meta.get(speaker, {})),
                )
            )
        return records

    @staticmethod
    def _speaker_meta(path: Path) -> dict[str, dict[str, str]]:
        """Gender, nationality and verification set (dev/test) per speaker, if the file is there."""
        if not path.is_file():
            return {}
        rows = read_rows(path, delimiter="\t", header=False)
        meta = {}
        for row in rows[1:]:  # header: VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set
            if len(row) >= 5:
                meta[row["0"].strip()] = {
                    "gender": row["2"].strip(),
                    "nationality": row["3"].strip(),
                    "verification_set": row["4"].strip(),
                }
        return meta
