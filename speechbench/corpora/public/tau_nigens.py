"""TAU-NIGENS Spatial Sound Events 2020 (DCASE2020 task 3), development set.

One-minute 4-channel 24 kHz recordings of 14 event classes with frame-wise (100 ms)
activity and direction of arrival. lhotse has no recipe, so this small parser reads
``metadata_dev/*.csv`` (rows ``frame,class,track,azimuth,elevation``) and turns runs of
active frames into ``[label, onset, offset]`` events; the raw DOA frames are kept in
``labels["doa"]``.

speechbench manifests are mono, so the omnidirectional W channel of the FOA format
(channel 0) is written once per file under the corpus root; the 4-channel originals
stay untouched. Splits follow the DCASE2020 baseline: fold 1 -> test, fold 2 -> dev,
folds 3-6 -> train.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import soundfile as sf

from speechbench.audio import write_audio
from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import LocalCorpus, read_rows
from speechbench.errors import CorpusError

CLASSES = (
    "alarm", "crying baby", "crash", "barking dog", "running engine", "female scream",
    "female speech", "burning fire", "footsteps", "knocking on door", "male scream",
    "male speech", "ringing phone", "piano",
)  # fmt: skip
FRAME_SECONDS = 0.1
FOLD_SPLITS = {1: "test", 2: "dev", 3: "train", 4: "train", 5: "train", 6: "train"}
_NAME = re.compile(r"fold(\d+)_room(\d+)_mix(\d+)_ov(\d+)")


def frames_to_events(rows: list[tuple[int, int, int, int, int]]) -> list[list[Any]]:
    """Runs of consecutive active frames of one (class, track) -> [label, onset_s, offset_s]."""
    frames: dict[tuple[int, int], list[int]] = {}
    for frame, cls, track, _, _ in rows:
        frames.setdefault((cls, track), []).append(frame)
    events = []
    for (cls, _track), active in frames.items():
        active = sorted(set(active))
        start = prev = active[0]
        for frame in active[1:] + [None]:
            if frame is not None and frame == prev + 1:
                prev = frame
                continue
            events.append(
                [
                    CLASSES[cls],
                    round(start * FRAME_SECONDS, 3),
                    round((prev + 1) * FRAME_SECONDS, 3),
                ]
            )
            if frame is not None:
                start = prev = frame
    return sorted(events, key=lambda e: (e[1], e[0]))


class TauNigensDcase2020(LocalCorpus):
    name = "tau-nigens-dcase2020"
    license = "custom non-commercial (TAU, see the corpus LICENSE)"
    description = "TAU-NIGENS Spatial Sound Events 2020, development dataset (DCASE2020 task 3)"
    citation = (
        "Politis et al., A dataset of reverberant spatial sound scenes with moving "
        "sources for sound event localization and detection, DCASE 2020"
    )
    sample_rate = 24000
    provides = ("labels.events",)
    env_var = "SPEECHBENCH_TAU_NIGENS_DIR"
    layout = (
        "DIR/foa_dev/foldF_roomR_mixNNN_ovO.wav (4-channel) and DIR/metadata_dev/<same name>.csv "
        "(rows 'frame,class,track,azimuth,elevation')"
    )
    audio_format: ClassVar[str] = "foa"  # "mic" uses channel 0 of the tetrahedral array

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        audio_dir = f"{self.audio_format}_dev"
        self.expect(source, audio_dir, "metadata_dev")
        records = []
        for meta in sorted((source / "metadata_dev").glob("*.csv")):
            match = _NAME.fullmatch(meta.stem)
            if match is None or int(match.group(1)) not in FOLD_SPLITS:
                raise CorpusError(
                    f"{meta}: name is not foldF_roomR_mixNNN_ovO.csv with F in 1-6; "
                    f"expected layout: {self.layout}"
                )
            rows = self._frames(meta)
            original = source / audio_dir / f"{meta.stem}.wav"
            mono = root / "audio" / f"{meta.stem}.wav"
            rate, duration = self._write_channel0(original, mono, meta)
            records.append(
                Utterance(
                    id=meta.stem,
                    path=str(mono.relative_to(root)),
                    sample_rate=rate,
                    duration=duration,
                    split=FOLD_SPLITS[int(match.group(1))],
                    labels={
                        "events": frames_to_events(rows),
                        "doa": [
                            [round(f * FRAME_SECONDS, 3), CLASSES[c], t, az, el]
                            for f, c, t, az, el in rows
                        ],
                        "room": int(match.group(2)),
                        "overlap": int(match.group(4)),
                        "source": str(original),
                    },
                )
            )
        return records

    @staticmethod
    def _frames(meta: Path) -> list[tuple[int, int, int, int, int]]:
        rows = []
        for number, row in enumerate(read_rows(meta, header=False), 1):
            try:
                values = tuple(int(float(row[str(i)])) for i in range(5))
            except (KeyError, ValueError):
                raise CorpusError(
                    f"{meta}:{number}: expected 'frame,class,track,azimuth,elevation', "
                    f"got {','.join(row.values())!r}"
                ) from None
            if not 0 <= values[1] < len(CLASSES):
                raise CorpusError(f"{meta}:{number}: class index {values[1]} is not in 0-13")
            rows.append(values)  # type: ignore[arg-type]
        return rows

    @staticmethod
    def _write_channel0(original: Path, mono: Path, meta: Path) -> tuple[int, float]:
        """Write the W (omni) channel once; later builds reuse it."""
        if not original.is_file():
            raise CorpusError(f"{original}: audio file not found (annotated in {meta}); restore it")
        if mono.is_file():
            info = sf.info(str(mono))
            return int(info.samplerate), info.frames / info.samplerate
        try:
            data, rate = sf.read(str(original), dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
            raise CorpusError(
                f"{original}: cannot decode audio ({exc}); replace the file"
            ) from None
        if data.shape[0] == 0:
            raise CorpusError(f"{original}: audio file is empty (0 samples); replace it")
        write_audio(mono, data[:, 0], rate)
        return int(rate), data.shape[0] / rate
