"""CSTR VCTK: 110 English speakers with various accents reading newspaper sentences, CC-BY-4.0.

Parsed by lhotse's ``prepare_vctk`` for both releases: 0.92 (``wav48_silence_trimmed``,
FLAC per microphone) and 0.80 (``wav48``, WAV). VCTK has no official split: dev and test
are each 5% of utterances chosen by a stable hash of the sentence id.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.lhotse_bridge import run_recipe, to_utterances
from speechbench.corpora.public.local import LocalCorpus, split_by_hash
from speechbench.errors import CorpusError


class Vctk(LocalCorpus):
    name = "vctk"
    license = "CC-BY-4.0"
    description = "CSTR VCTK Corpus (0.92 or 0.80)"
    citation = "Yamagishi, Veaux, MacDonald, CSTR VCTK Corpus 0.92, University of Edinburgh 2019"
    sample_rate = 48000
    provides = ("text", "speaker")
    env_var = "SPEECHBENCH_VCTK_DIR"
    layout = (
        "DIR/speaker-info.txt, DIR/txt/pNNN/pNNN_NNN.txt and either "
        "DIR/wav48_silence_trimmed/pNNN/pNNN_NNN_mic{1,2}.flac (0.92) "
        "or DIR/wav48/pNNN/pNNN_NNN.wav (0.80)"
    )
    mic_id: ClassVar[str] = "mic2"  # lhotse's default microphone for 0.92
    dev_fraction: ClassVar[float] = 0.05
    test_fraction: ClassVar[float] = 0.05

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        self.expect(source, "speaker-info.txt", "txt")
        edinburgh = (source / "wav48_silence_trimmed").is_dir()
        if not edinburgh:
            self.expect(source, "wav48")
        self._expect_audio_for_every_text(source, edinburgh)
        manifests = run_recipe(
            self.name,
            "prepare_vctk",
            corpus_dir=source,
            use_edinburgh_vctk_url=edinburgh,
            mic_id=self.mic_id,
        )

        def split(sup) -> str:  # the sentence, not the microphone, decides the split
            sentence = sup.id.removesuffix(f"_{self.mic_id}")
            return split_by_hash(sentence, self.dev_fraction, self.test_fraction)

        records = to_utterances(manifests, split, language="en")
        for record in records:
            record.labels["release"] = "0.92" if edinburgh else "0.80"
        return records

    def _expect_audio_for_every_text(self, source: Path, edinburgh: bool) -> None:
        """lhotse fails with a bare StopIteration when a sentence has no audio; name it.
        The gaps of the real release that lhotse skips on purpose (p280 has no mic2
        files, p362 misses some) are left to it."""
        for txt in sorted((source / "txt").rglob("*.txt")):
            speaker = txt.name.split("_")[0]
            if edinburgh:
                if speaker == "p362" or (speaker == "p280" and self.mic_id == "mic2"):
                    continue
                audio = (
                    source / "wav48_silence_trimmed" / speaker / f"{txt.stem}_{self.mic_id}.flac"
                )
            else:
                audio = source / "wav48" / speaker / f"{txt.stem}.wav"
            if not audio.is_file():
                raise CorpusError(
                    f"corpus {self.name}: {audio} not found but {txt} has its text; "
                    "restore the audio or remove the text file"
                )
