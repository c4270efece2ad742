"""Corpora of listener ratings for MOS prediction: TMHINT-QI and BVCC.

Both keep every individual rating, so ``labels["mos"]`` holds ``mean`` (the target of
utterance-level MOS prediction), ``ratings`` (one per listener) and ``system`` (for
system-level correlation).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import fmean
from typing import Any, ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.lhotse_bridge import import_recipe_module
from speechbench.corpora.public.local import (
    LocalCorpus,
    audio_info,
    read_rows,
    require_columns,
    split_by_hash,
)
from speechbench.errors import CorpusError


class TmhintQi(LocalCorpus):
    """TMHINT-QI: noisy and enhanced Mandarin (TMHINT) sentences rated by listeners for
    quality (1-5) and intelligibility. lhotse has no recipe, so this small parser reads
    ``raw_data.csv`` (one row per rating). Splits: files in ``test/`` -> test, files in
    ``train/`` -> train minus 10% dev (stable hash; the release has no dev set). Audio
    files nobody rated are left out."""

    name = "tmhint-qi"
    license = "research use (see the corpus release)"
    description = "TMHINT-QI speech quality and intelligibility ratings"
    citation = (
        "Chen et al., InQSS: a speech intelligibility and quality assessment model using "
        "a multi-task learning network, Interspeech 2022"
    )
    sample_rate = 16000
    provides = ("labels.mos",)
    env_var = "SPEECHBENCH_TMHINT_QI_DIR"
    layout = (
        "DIR/raw_data.csv (idx,method,uttr,snr,noise,quality_score,intelligibility_score,"
        "file_name), DIR/train/<file_name>.wav and DIR/test/<file_name>.wav"
    )
    dev_fraction: ClassVar[float] = 0.1

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "raw_data.csv", "train", "test")
        table = source / "raw_data.csv"
        rows = read_rows(table)
        require_columns(
            table,
            rows,
            "method",
            "snr",
            "noise",
            "quality_score",
            "intelligibility_score",
            "file_name",
            "uttr",
        )
        by_file: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            by_file[row["file_name"].removesuffix(".wav")].append(row)
        records = []
        for name, ratings in sorted(by_file.items()):
            quality = [_score(table, r, "quality_score") for r in ratings]
            quality = [q for q in quality if q is not None]
            if not quality:
                continue
            intelligibility = [_score(table, r, "intelligibility_score") for r in ratings]
            intelligibility = [i for i in intelligibility if i is not None]
            if (source / "test" / f"{name}.wav").is_file():
                path, split = source / "test" / f"{name}.wav", "test"
            else:
                path, split = (
                    source / "train" / f"{name}.wav",
                    split_by_hash(name, self.dev_fraction),
                )
            rate, duration = audio_info(path, str(table))
            first = ratings[0]
            mos: dict[str, Any] = {
                "mean": fmean(quality),
                "ratings": quality,
                "system": f"{first['method']}-SNR{first['snr']}-{first['noise']}",
            }
            if intelligibility:
                mos["intelligibility_mean"] = fmean(intelligibility)
                mos["intelligibility_ratings"] = intelligibility
            records.append(
                Utterance(
                    id=name,
                    path=str(path),
                    sample_rate=rate,
                    duration=duration,
                    split=split,
                    language="zh",
                    labels={
                        "mos": mos,
                        "sentence": first["uttr"],
                        "snr": first["snr"],
                        "noise": first["noise"],
                        "method": first["method"],
                    },
                )
            )
        return records


def _score(table: Path, row: dict[str, str], column: str) -> float | None:
    value = (row.get(column) or "").strip()
    if not value:
        return None  # the listener gave no score of this kind
    try:
        return float(value)
    except ValueError:
        raise CorpusError(
            f"{table}: {column}={value!r} for {row.get('file_name')} is not a number"
        ) from None


class Bvcc(LocalCorpus):
    """BVCC main track (VoiceMOS 2022): samples of 187 TTS/VC systems and natural speech,
    each rated by 8 listeners. Rating lines are parsed with lhotse's ``parse_main_line``;
    lhotse's ``prepare_bvcc`` itself is not used because it requires the out-of-domain
    track too and gives the test set no ratings. Splits: TRAINSET -> train, DEVSET -> dev,
    TESTSET -> test (the full release, zenodo 6572573, has the test ratings)."""

    name = "bvcc"
    license = "CC-BY-4.0 (ratings); audio from Blizzard/VCC under their own terms"
    description = (
        "BVCC: Blizzard and Voice Conversion Challenge listening test ratings (main track)"
    )
    citation = (
        "Cooper, Yamagishi, How do voices from past speech synthesis challenges compare "
        "today?, SSW 2021"
    )
    sample_rate = 16000
    provides = ("labels.mos",)
    env_var = "SPEECHBENCH_BVCC_DIR"
    layout = (
        "DIR/sets/{TRAINSET,DEVSET,TESTSET} (lines 'sysID,uttID,rating,ignore,listenerinfo') "
        "and DIR/wav/<uttID> (DIR is main/DATA of the full BVCC release, zenodo 6572573, "
        "which has TESTSET)"
    )
    sets: ClassVar[dict[str, str]] = {"TRAINSET": "train", "DEVSET": "dev", "TESTSET": "test"}

    def source_dir(self) -> Path:
        source = super().source_dir()
        for inner in (source / "DATA", source / "main" / "DATA"):  # accept the release root too
            if not (source / "sets").is_dir() and (inner / "sets").is_dir():
                return inner
        return source

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "wav", *(f"sets/{name}" for name in self.sets))
        parse_main_line = import_recipe_module(self.name, "bvcc").parse_main_line
        records = []
        for set_name, split in self.sets.items():
            set_path = source / "sets" / set_name
            ratings: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
            for number, line in enumerate(set_path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    utt, system, rating, listener = parse_main_line(line.strip())
                    ratings[utt].append((system, int(rating), listener["id"]))
                except (AssertionError, ValueError) as exc:
                    raise CorpusError(
                        f"{set_path}:{number}: expected 'sysID,uttID,rating,ignore,"
                        f"listenerinfo' ({type(exc).__name__} {exc}), got {line.strip()!r}"
                    ) from None
            for utt, items in sorted(ratings.items()):
                path = source / "wav" / utt
                rate, duration = audio_info(path, str(set_path))
                records.append(
                    Utterance(
                        id=utt.removesuffix(".wav"),
                        path=str(path),
                        sample_rate=rate,
                        duration=duration,
                        split=split,
                        labels={
                            "mos": {
                                "mean": fmean(r for _, r, _ in items),
                                "ratings": [r for _, r, _ in items],
                                "listeners": [who for _, _, who in items],
                                "system": items[0][0],
                            }
                        },
                    )
                )
        return records
