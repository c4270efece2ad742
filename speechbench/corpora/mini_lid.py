"""mini-lid: spoken language identification, 11 languages.

Real speech: en, es, fr, it, ru (Asterisk voices) and cs, nl (Fish Fillets dubs).
Synthetic speech (labelled ``labels["synthetic"] = True``): de, pl, sv, bg spoken by
espeak-ng with six voice variants each (the "speakers"), reading the game's real
translated dialogue.

Real recordings keep the split every corpus shares (speechbench.corpora.splits): a
held-out speaker's utterances are test, the others' train/dev/test by recording. In a
language with a held-out speaker the test speakers are exactly the held-out ones (the
other speakers' shared-test recordings are left out, so test speakers are unseen); a
language without one (en, ru: one speaker each) tests on unseen utterances of its
speakers and is flagged ``labels["test_speakers_seen"]`` (and
``labels["single_speaker_language"]`` when it has one speaker). Synthetic languages
hold out espeak-ng voices as before.

As in the NIST LRE duration conditions, every test utterance appears at full length
(``condition: "full"``) and as 3 s and 1 s segments cut from the middle of its speech
(``condition: "3s"|"1s"``, ``source_id`` names the full utterance). All three
conditions score the *same* utterances: a test utterance with less than 3 s of speech
is left out of test (it cannot move to train: its split is shared). Train and dev
records are full length.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from speechbench.audio import resample, write_audio
from speechbench.corpora import espeak_cli, fillets, speakers, splits
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.segments import condition_segments
from speechbench.corpora.speakers import SourceUtt

SEED = 0
UTTS_PER_LANGUAGE = 240  # full-length utterances per language before segment cuts
MIN_TEST_SHARE = 0.25  # held-out speakers are added until they hold this share
DEV_FRACTION = 0.1
SINGLE_SPEAKER_SPLIT = (0.7, 0.1, 0.2)  # train/dev/test of a one-speaker language
MIN_TEST_SECONDS = 3.2  # header duration a real test recording needs to be tried
SYNTHETIC_LANGUAGES = ("de", "pl", "sv", "bg")  # real text from fillets-ng-data
ESPEAK_VARIANTS = (  # (variant, speed wpm, pitch 0-99): six distinct synthetic "speakers"
    ("m1", 150, 45),
    ("m3", 170, 35),
    ("m5", 160, 55),
    ("f1", 155, 60),
    ("f3", 175, 70),
    ("f4", 145, 50),
)
SYNTH_TEXT_CHARS = (20, 140)


@dataclass(frozen=True)
class Item:
    """One full-length utterance to write: a real source or a synthetic sentence."""

    source: SourceUtt | None
    id: str
    language: str
    speaker: str
    text: str | None
    synthetic: bool
    voice: tuple[str, int, int] | None = None


def real_items() -> list[Item]:
    return [Item(s, s.id, s.language, s.speaker, s.text, False) for s in speakers.real_sources()]


def synthetic_items(language: str, seed: int) -> list[Item]:
    """Each espeak-ng variant reads its own sentences (no text shared across speakers)."""
    low, high = SYNTH_TEXT_CHARS
    texts = [t for t in fillets.dialogue_texts(language) if low <= len(t) <= high]
    rng = random.Random(f"{seed}-{language}")
    rng.shuffle(texts)
    per_voice = UTTS_PER_LANGUAGE // len(ESPEAK_VARIANTS)
    items = []
    for k, (variant, speed, pitch) in enumerate(ESPEAK_VARIANTS):
        speaker = f"espeak-{language}-{variant}"
        for j, text in enumerate(texts[k * per_voice : (k + 1) * per_voice]):
            item_id = f"syn-{language}-{variant}-{j:03d}"
            voice = (f"{language}+{variant}", speed, pitch)
            items.append(Item(None, item_id, language, speaker, text, True, voice))
    return items


def balance(items: list[Item], per_language: int, seed: int) -> list[Item]:
    """Round-robin over a language's speakers so each gets a fair share of the budget."""
    by_lang: dict[str, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
    for item in sorted(items, key=lambda i: i.id):
        by_lang[item.language][item.speaker].append(item)
    rng = random.Random(seed)
    chosen = []
    for lang in sorted(by_lang):
        queues = [by_lang[lang][s] for s in sorted(by_lang[lang])]
        for queue in queues:
            rng.shuffle(queue)
        picked = 0
        while picked < per_language and any(queues):
            for queue in queues:
                if queue and picked < per_language:
                    chosen.append(queue.pop())
                    picked += 1
    return chosen


def held_out_languages(items: list[Item]) -> set[str]:
    """Languages with a real held-out speaker (speechbench.corpora.splits)."""
    return {
        i.language for i in items if i.source is not None and splits.speaker_held_out(i.speaker)
    }


def usable(items: list[Item]) -> list[Item]:
    """Real items that can keep their shared split here: not a seen speaker's test
    recording where the language has held-out speakers, and long enough to cut 3 s."""
    held = held_out_languages(items)
    out = []
    for item in items:
        if item.source is not None and item.source.shared_split == "test":
            seen = not splits.speaker_held_out(item.speaker)
            if (seen and item.language in held) or item.source.duration < MIN_TEST_SECONDS:
                continue
        out.append(item)
    return out


def assign_splits(items: list[Item], seed: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split per language. Real recordings: their shared split. Synthetic languages:
    held-out voices where possible, else held-out utterances.
    Returns ``{item_id: split}`` and ``{language: test speakers}``."""
    rng = random.Random(seed)
    by_lang: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_lang[item.language].append(item)
    split_of: dict[str, str] = {}
    test_speakers: dict[str, list[str]] = {}
    for lang in sorted(by_lang):
        group = sorted(by_lang[lang], key=lambda i: i.id)
        if all(item.source is not None for item in group):
            for item in group:
                split_of[item.id] = item.source.shared_split
            test_speakers[lang] = sorted(
                {i.speaker for i in group if splits.speaker_held_out(i.speaker)}
            )
            continue
        counts: dict[str, int] = defaultdict(int)
        for item in group:
            counts[item.speaker] += 1
        names = sorted(counts)
        rng.shuffle(names)
        held: list[str] = []
        while len(names) - len(held) > 1 and sum(counts[s] for s in held) < MIN_TEST_SHARE * len(
            group
        ):
            held.append(names[len(held)])
        test_speakers[lang] = sorted(held)
        for item in group:
            if len(names) == 1:
                draw = rng.random()
                train, dev, _ = SINGLE_SPEAKER_SPLIT
                split = "train" if draw < train else "dev" if draw < train + dev else "test"
            elif item.speaker in held:
                split = "test"
            else:
                split = "dev" if rng.random() < DEV_FRACTION else "train"
            split_of[item.id] = split
    return split_of, test_speakers


class MiniLid(Corpus):
    name = "mini-lid"
    version = "2"  # 2: shared split; full/3s/1s on the same test utterances
    license = "CC-BY-SA-3.0, CC-BY-3.0, CC-BY-SA-3.0-IT, GPL-2, BSD-style; espeak-ng output"
    description = (
        "Language ID over 11 languages: real en/es/fr/it/ru (Asterisk) and cs/nl "
        "(Fish Fillets), synthetic de/pl/sv/bg (espeak-ng); held-out speakers; test at "
        "full length, 3 s and 1 s (NIST LRE conditions)."
    )
    sample_rate = speakers.SAMPLE_RATE
    provides = ("language", "speaker", "text")

    def items(self) -> list[Item]:
        items = real_items()
        for lang in SYNTHETIC_LANGUAGES:
            items += synthetic_items(lang, SEED)
        return items

    def _write(self, item: Item, out: Path) -> None:
        if out.exists():
            return
        if item.source is not None:
            speakers.convert(item.source, out)
            return
        voice, speed, pitch = item.voice
        wav, rate = espeak_cli.synthesize(item.text, voice, speed, pitch)
        write_audio(out, resample(wav, rate, self.sample_rate), self.sample_rate)

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        items = balance(usable(self.items()), UTTS_PER_LANGUAGE, SEED)
        split_of, test_speakers = assign_splits(items, SEED)
        speakers_of: dict[str, set[str]] = defaultdict(set)
        for item in items:
            speakers_of[item.language].add(item.speaker)
        records = []
        too_short: list[str] = []
        for item in tqdm(items, desc="mini-lid audio", unit="file"):
            split = split_of[item.id]
            rel = Path(split) / item.language / f"{item.id}.wav"
            self._write(item, root / rel)
            labels = {
                "class": item.language,
                "condition": "full",
                "synthetic": item.synthetic,
                "single_speaker_language": len(speakers_of[item.language]) == 1,
                "test_speakers_seen": not test_speakers[item.language],
                "sources": [item.source.source_id] if item.source is not None else [],
            }
            if item.source is not None:
                labels["origin"] = item.source.origin
            record = Utterance(
                id=item.id,
                path=rel.as_posix(),
                sample_rate=self.sample_rate,
                duration=speakers.duration_of(root / rel),
                split=split,
                speaker=item.speaker,
                language=item.language,
                text=item.text,
                labels=labels,
            )
            if split == "test":
                segments = condition_segments(root, record, self.sample_rate, record.language)
                if segments is None:  # under 3 s of speech: not in any condition
                    too_short.append(item.id)
                    continue
                records += [record, *segments]
            else:
                records.append(record)
        origins = {i.source.origin for i in items if i.source is not None}
        per_language = {lang: sorted(names) for lang, names in sorted(speakers_of.items())}
        summary = [
            "",
            f"Test utterances left out (under 3 s of speech, so the three duration "
            f"conditions score the same utterances): {len(too_short)}",
            "Speakers per language (test speakers marked *):",
        ]
        for lang, names in per_language.items():
            marks = [n + ("*" if n in test_speakers[lang] else "") for n in names]
            flag = "" if test_speakers[lang] else "  [no held-out speaker: test utterances]"
            summary.append(f"  {lang}: {len(names)} — {', '.join(marks)}{flag}")
        print("\n".join(summary))
        synthetic_note = [
            "",
            f"- espeak-ng: synthetic speech for {', '.join(SYNTHETIC_LANGUAGES)}; "
            f"{espeak_cli.CREDIT}; licence {espeak_cli.LICENSE}.",
            f"  Text read: translated dialogue of {fillets.CREDIT}, "
            f"Debian package fillets-ng-data, licence {fillets.LICENSE}.",
        ]
        attribution = speakers.attribution(self.name, origins, synthetic_note + summary)
        return records, attribution
