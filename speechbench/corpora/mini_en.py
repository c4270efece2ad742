"""mini-en: the real English prompts of Asterisk's Allison voice, for ASR.

563 transcribed read prompts of one professional speaker (about 25 minutes), 8 kHz
telephone-band originals resampled to 16 kHz, text normalised with
``speechbench.text.normalize``. Splits (about 80/10/10) are the split every corpus
shares (speechbench.corpora.splits): each recording has its own, a text takes the most
held-out split of its recordings, and a recording of a text in another split is left
out, so no prompt text appears in two splits and no test prompt is train in mini-phone,
mini-lid, mini-sv, mini-mos or mini-dcase. ``labels["sources"]`` names the recording and
the text.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from speechbench.audio import read_audio, resample, write_audio
from speechbench.corpora.asterisk import LICENSES, asterisk_prompts
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.prompts import prompt_split, prompt_text, sentence_id
from speechbench.corpora.splits import group_splits, text_source
from speechbench.text import normalize

ATTRIBUTION = """mini-en is derived from the Asterisk core sound prompts (English, voice "Allison"),
Debian packages asterisk-core-sounds-en-wav and asterisk-core-sounds-en (transcripts),
Copyright Digium, Inc. and Allison Smith, licensed under Creative Commons
Attribution-ShareAlike 3.0 (CC-BY-SA-3.0): https://creativecommons.org/licenses/by-sa/3.0/
Changes: resampled from 8 kHz to 16 kHz, transcripts normalised to lowercase words.
The derived corpus is shared under the same licence."""


class MiniEn(Corpus):
    name = "mini-en"
    version = "2"  # 2: the shared split (1 used assign_group_splits(seed=0) and leaked)
    license = LICENSES["en"]
    description = "real English read prompts, 1 speaker (Asterisk Allison), ~25 min, text"
    sample_rate = 16000
    provides = ("text", "speaker", "language")
    seed = 0

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        prompts = [p for p in asterisk_prompts("en") if normalize(p.text)]
        texts = {p.name: normalize(p.text) for p in prompts}
        # group by the text key the phone corpora use too (notes removed), so a text
        # has one split in mini-en, mini-phone and mini-vc
        keys = {p.name: prompt_text(p) or texts[p.name] for p in prompts}
        own = {p.name: prompt_split(p) for p in prompts}
        group_split, dropped = group_splits((n, keys[n], own[n]) for n in own)
        prompts = [p for p in prompts if p.name not in dropped]
        records = []
        for prompt in tqdm(prompts, desc="mini-en: resample", unit="file"):
            rel = Path("audio") / (prompt.name.replace("/", "__") + ".wav")
            out = root / rel
            if out.exists():  # restartable: a finished file is kept
                wav, _ = read_audio(out)
            else:
                original, rate = read_audio(prompt.path)
                wav = resample(original, rate, self.sample_rate).numpy()
                write_audio(out, wav, self.sample_rate)
            records.append(
                Utterance(
                    id=f"en-allison-{prompt.name.replace('/', '-')}",
                    path=rel.as_posix(),
                    sample_rate=self.sample_rate,
                    duration=round(len(wav) / self.sample_rate, 4),
                    split=group_split[keys[prompt.name]],
                    speaker=prompt.speaker,
                    language="en",
                    text=texts[prompt.name],
                    labels={
                        "sources": [
                            prompt.source_id,
                            text_source(sentence_id(keys[prompt.name])),
                        ]
                    },
                )
            )
        return records, ATTRIBUTION
