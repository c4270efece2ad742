"""mini-phone: English speech with phone alignments, for PER and phone-level pretraining.

Two parts, one phone inventory (speechbench.corpora.phones.PHONES, 39 CMUdict phones in
IPA, plus ``sil``):

* synthetic: the Asterisk English prompt texts spoken by many espeak-ng en-us voice
  variants at varied pitch and rate; phone times are exact (libespeak-ng's phoneme
  events, speechbench.corpora.espeak).
* real: Asterisk's own recordings of the same texts (Allison, 8 kHz, upsampled to 16 kHz)
  with phones force-aligned by pocketsphinx (10 ms resolution). Utterances with words
  pocketsphinx's dictionary lacks, or that it cannot align, are left out.

Splits: every sentence has the split shared by all corpora (about 80/10/10,
speechbench.corpora.prompts / splits: the split of its Allison recording, so a mini-en
test prompt is never mini-phone train, as audio or as text), and the synthetic voices
are split too, so dev and test hold unseen sentences spoken by unseen voices (held-out
speakers). The one real speaker appears in every split, on that split's sentences
(``labels["source"]`` tells the parts apart; ``labels["sources"]`` lists the shared
source ids). Everything else is a function of (version, seed).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tqdm import tqdm

from speechbench.audio import read_audio, resample
from speechbench.corpora import espeak, forced_align
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.phones import map_intervals
from speechbench.corpora.prompts import (
    LICENSE,
    SOURCE_PACKAGES,
    Sentence,
    english_sentences,
)
from speechbench.corpora.rendering import Rendered, render_cached
from speechbench.errors import AudioError, CorpusError

# espeak-ng voice variants that give intelligible, distinct voices (whisper, croak,
# robot and novelty variants left out). Any variant works with any language.
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "Alex", "Andrea", "Andy", "Annie", "Denis", "Gene", "Hugo", "Jacky", "Lee", "Marco",
    "Mike", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "ed", "edward", "grandma", "grandpa", "gustave", "ian", "iven", "iven2",
    "john", "klatt", "klatt2", "klatt3", "klatt4", "linda", "max", "michel", "norbert",
    "paul", "quincy", "rob", "robert", "shelby", "steph", "steph2", "travis", "victor",
    "zac",
)  # fmt: skip
LANGUAGE_VOICE = "en-us"  # rhotic American English: matches CMUdict and the real speaker


@dataclass(frozen=True)
class EspeakSpeaker:
    """One synthetic speaker: a voice variant with its own base pitch and pitch range."""

    variant: str
    pitch: int  # 0-100
    pitch_range: int  # 0-100

    @property
    def id(self) -> str:
        return f"espeak-{self.variant}"

    @property
    def voice(self) -> str:
        return f"{LANGUAGE_VOICE}+{self.variant}"


def espeak_speakers(
    seed_key: str, variants: tuple[str, ...], n_dev: int, n_test: int
) -> dict[str, list[EspeakSpeaker]]:
    """Disjoint speaker pools per split, deterministic for ``seed_key``."""
    rng = random.Random(seed_key + "-voices")
    speakers = [EspeakSpeaker(v, rng.randint(35, 70), rng.randint(30, 80)) for v in variants]
    rng.shuffle(speakers)
    if len(speakers) < n_dev + n_test + 1:
        raise CorpusError(
            f"{len(speakers)} voices cannot fill {n_dev} dev + {n_test} test + train voices"
        )
    return {
        "test": speakers[:n_test],
        "dev": speakers[n_test : n_test + n_dev],
        "train": speakers[n_test + n_dev :],
    }


def speak_espeak(text: str, speaker: EspeakSpeaker, rate: int, seed: int) -> Rendered:
    """espeak-ng audio with its phones mapped onto the inventory (22.05 kHz)."""
    synth = espeak.synthesize(text, speaker.voice, rate, speaker.pitch, speaker.pitch_range, seed)
    return Rendered(synth.audio, synth.sample_rate, map_intervals(synth.phones), synth.words)


def real_recording(sentence: Sentence, rate: int) -> Rendered:
    """Asterisk's recording of the sentence, upsampled, with forced phone alignment."""
    try:
        wav, source_rate = read_audio(sentence.prompt.path)
    except AudioError as exc:
        raise CorpusError(f"real prompt {sentence.prompt.name}: {exc}") from None
    audio = resample(wav, source_rate, rate).numpy()
    phones, words = forced_align.align(audio, sentence.text)
    return Rendered(audio, rate, phones, words, {"prompt": sentence.prompt.name})


class MiniPhone(Corpus):
    name: ClassVar[str] = "mini-phone"
    version: ClassVar[str] = "2"  # 2: shared leak-free split (1 split sentences by its own seed)
    license: ClassVar[str] = f"{LICENSE} (texts, real recordings); espeak-ng output (free)"
    description: ClassVar[str] = (
        "English read speech with phone alignments: Asterisk prompt texts by many espeak-ng "
        "voices (exact phone times) and by their real speaker (pocketsphinx forced alignment)"
    )
    sample_rate: ClassVar[int] = 16000
    provides: ClassVar[tuple[str, ...]] = ("text", "phones", "speaker")

    seed: ClassVar[int] = 0
    variants: ClassVar[tuple[str, ...]] = VARIANTS
    n_dev_voices: ClassVar[int] = 6
    n_test_voices: ClassVar[int] = 6
    voices_per_train_sentence: ClassVar[int] = 4
    rate_range: ClassVar[tuple[int, int]] = (140, 210)  # words per minute
    include_real: ClassVar[bool] = True

    @property
    def seed_key(self) -> str:
        # voices, pitches and rates are drawn as in version 1 (only the split changed)
        return f"{self.name}-1-{self.seed}"

    def sentences(self) -> list[Sentence]:
        return english_sentences()

    def synthetic_jobs(
        self, sentences: list[Sentence], splits: dict[str, str]
    ) -> list[tuple[Sentence, EspeakSpeaker, int, str]]:
        """(sentence, speaker, rate, split): dev/test sentences by every voice of that
        split, train sentences by ``voices_per_train_sentence`` train voices."""
        pools = espeak_speakers(self.seed_key, self.variants, self.n_dev_voices, self.n_test_voices)
        jobs = []
        for sentence in sentences:
            split = splits[sentence.id]
            rng = random.Random(f"{self.seed_key}-{sentence.id}")
            pool = pools[split]
            if split == "train":
                pool = rng.sample(pool, min(self.voices_per_train_sentence, len(pool)))
            for speaker in pool:
                jobs.append((sentence, speaker, rng.randint(*self.rate_range), split))
        return jobs

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        sentences = self.sentences()
        splits = {s.id: s.shared_split for s in sentences}
        records: list[Utterance] = []
        for sentence, speaker, rate, split in tqdm(
            self.synthetic_jobs(sentences, splits), desc=f"{self.name} espeak-ng", unit="utt"
        ):
            uid = f"{speaker.id}-{sentence.id}"
            path = f"wav/{speaker.id}/{uid}.wav"
            seed = self.seed

            def render(s=sentence, sp=speaker, r=rate, sd=seed) -> Rendered:
                return speak_espeak(s.text, sp, r, sd)

            meta = render_cached(root, path, self.sample_rate, render)
            labels = {
                "source": "espeak-ng",
                "voice": speaker.voice,
                "rate_wpm": rate,
                "pitch": speaker.pitch,
                "pitch_range": speaker.pitch_range,
                "words": meta["words"],
                "sources": [sentence.text_source],
            }
            records.append(self._record(uid, path, meta, split, speaker.id, sentence, labels))
        skipped: list[str] = []
        if self.include_real:
            records += self._build_real(root, sentences, splits, skipped)
        return records, self.attribution(skipped)

    def _build_real(
        self, root: Path, sentences: list[Sentence], splits: dict[str, str], skipped: list[str]
    ) -> list[Utterance]:
        records = []
        for sentence in tqdm(sentences, desc=f"{self.name} real+align", unit="utt"):
            speaker = sentence.prompt.speaker
            uid = f"{speaker}-{sentence.id}"
            path = f"wav/{speaker}/{uid}.wav"
            stale = root / path
            if stale.with_suffix(".json").exists():  # rendered from another prompt of the text
                extra = json.loads(stale.with_suffix(".json").read_text("utf-8")).get("extra")
                if (extra or {}).get("prompt") != sentence.prompt.name:
                    stale.unlink(missing_ok=True)
                    stale.with_suffix(".json").unlink()
            try:
                meta = render_cached(
                    root, path, self.sample_rate, lambda s=sentence: real_recording(s, 16000)
                )
            except forced_align.AlignmentFailed as exc:
                skipped.append(f"{sentence.prompt.name}: {exc}")
                continue
            labels = {
                "source": "asterisk",
                "prompt": sentence.prompt.name,
                "alignment": "pocketsphinx-forced-10ms",
                "words": meta["words"],
                "sources": [sentence.prompt.source_id, sentence.text_source],
            }
            records.append(
                self._record(uid, path, meta, splits[sentence.id], speaker, sentence, labels)
            )
        return records

    def _record(
        self,
        uid: str,
        path: str,
        meta: dict[str, Any],
        split: str,
        speaker: str,
        sentence: Sentence,
        labels: dict[str, Any],
    ) -> Utterance:
        return Utterance(
            id=uid,
            path=path,
            sample_rate=self.sample_rate,
            duration=meta["duration"],
            split=split,
            speaker=speaker,
            language="en",
            text=sentence.text,
            phones=meta["phones"],
            labels=labels | {"sentence": sentence.id},
        )

    def attribution(self, skipped: list[str]) -> str:
        lines = [
            f"{self.name} {self.version} (seed {self.seed}) - built by speechbench",
            "",
            f"Texts: Asterisk core sound prompts, English transcripts (Debian "
            f"{SOURCE_PACKAGES[0]}), {LICENSE}, (c) Digium / Allison Smith.",
            f"Synthetic audio: {espeak.library_description()}, GPL-3.0-or-later software whose "
            f"speech output is not restricted; voice {LANGUAGE_VOICE} with variants.",
            "Exact phone times from libespeak-ng phoneme events; phones mapped onto the "
            "39 CMUdict phones in IPA (speechbench/corpora/phones.py).",
        ]
        if self.include_real:
            lines += [
                "Real audio: Asterisk core sounds en, voice Allison "
                f"(Debian {SOURCE_PACKAGES[1]}), {LICENSE}, (c) Digium / Allison Smith; "
                "redistributions must keep this licence.",
                "Forced alignment: pocketsphinx (BSD-2-Clause) with its CMU US English acoustic "
                "model and CMUdict.",
                f"Real prompts left out ({len(skipped)}): not alignable by pocketsphinx.",
            ]
            lines += [f"  - {item}" for item in skipped]
        return "\n".join(lines)
