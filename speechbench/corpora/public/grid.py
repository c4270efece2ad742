"""GRID audio-visual sentence corpus: 34 talkers x 1000 sentences like "bin blue at f two
now", 25 kHz audio, CC-BY-4.0.

lhotse's ``prepare_grid`` is not used: it reads the .mpg videos through ffmpeg and divides
the alignment times by 1000 as if they were milliseconds, while GRID's ``.align`` times
count 1/25000 s (1000 per 25 fps video frame; a 3 s sentence ends near 75000). This
small parser reads ``audio_25k`` and ``alignments``. GRID has no official split; test is
the unseen-speaker set of LipNet (s1, s2, s20, s22), dev 5% of the other utterances
(stable hash), train the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import LocalCorpus, audio_info, split_by_hash
from speechbench.errors import CorpusError

ALIGN_UNITS_PER_SECOND = 25000.0
SILENCES = {"sil", "sp"}


def read_alignment(path: Path) -> list[list]:
    """``start end word`` lines -> [[word, start_s, end_s], ...]."""
    words = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            start, end = float(fields[0]), float(fields[1])
            word = fields[2]
        except (IndexError, ValueError):
            raise CorpusError(f"{path}:{number}: expected 'start end word', got {line!r}") from None
        words.append(
            [word, round(start / ALIGN_UNITS_PER_SECOND, 4), round(end / ALIGN_UNITS_PER_SECOND, 4)]
        )
    return words


class Grid(LocalCorpus):
    name = "grid"
    license = "CC-BY-4.0"
    description = "GRID audio-visual sentence corpus (audio_25k)"
    citation = (
        "Cooke, Barker, Cunningham, Shao, An audio-visual corpus for speech perception "
        "and automatic speech recognition, JASA 2006"
    )
    sample_rate = 25000
    provides = ("text", "speaker")
    env_var = "SPEECHBENCH_GRID_DIR"
    layout = "DIR/audio_25k/sN/<id>.wav and DIR/alignments/sN/<id>.align"
    test_speakers: ClassVar[frozenset[str]] = frozenset({"s1", "s2", "s20", "s22"})
    dev_fraction: ClassVar[float] = 0.05

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "audio_25k", "alignments")
        records = []
        for wav in sorted((source / "audio_25k").glob("s*/*.wav")):
            speaker = wav.parent.name
            align = source / "alignments" / speaker / f"{wav.stem}.align"
            if not align.is_file():
                raise CorpusError(
                    f"corpus {self.name}: {wav} has no alignment {align}; restore it from "
                    "alignments.zip or remove the audio file"
                )
            words = read_alignment(align)
            rate, duration = audio_info(wav)
            utt = f"{speaker}_{wav.stem}"
            split = (
                "test" if speaker in self.test_speakers else split_by_hash(utt, self.dev_fraction)
            )
            records.append(
                Utterance(
                    id=utt,
                    path=str(wav),
                    sample_rate=rate,
                    duration=duration,
                    split=split,
                    speaker=speaker,
                    language="en",
                    text=" ".join(w for w, _, _ in words if w not in SILENCES),
                    labels={"words": words},
                )
            )
        return records
