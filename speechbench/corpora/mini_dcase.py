"""mini-dcase: 10 s soundscapes of real event sounds over scene backgrounds, mixed by scaper.

Events are real recordings (desktop sound themes, sound icons, CC0 animals, Asterisk speech
prompts and Asterisk music), trimmed of silence so that onset/offset labels match where
the energy is. Each of the five scenes differs in its background bed AND in its event
distribution (``SCENES``). Labels per clip: the scene (ASC), the set of event classes
(TAG) and strong ``[label, onset_s, offset_s]`` events (SED).

Event source files keep the split every corpus shares (speechbench.corpora.splits):
sound files by class in a hash order (train, test, train, dev, train, ...: each class
with two or more files has a test file), speech prompts by recording. Train, dev and
test clips draw only from their own split's pool, and background beds (and the speech
and music inside them) are rendered per pool from that split's recordings, so no
source is in two splits, here or across corpora. A dev clip skips an event class that
has no dev file. ``labels["sources"]`` lists the events' and the bed's recordings.

scaper (Salamon et al. 2017) does the mixing: loudness-based (LUFS) SNR against the
background, fades and the JAMS annotation. Every random choice is drawn here from a
per-clip seed and handed to scaper as a constant, so an interrupted build restarts with
identical clips.

Version 3 has 900 clips (5 scenes x 108 train / 24 dev / 48 test) and three disjoint
*views*, corpora of their own (``mini-dcase-asc``, ``-tag``, ``-sed``): clip ``i`` of a
scene and split belongs to view ``VIEWS[i % 3]``, and a view keeps only its own label
type (scene, tags or strong events) plus ``sources``. Joint training then mixes three
corpora with different clips, as DCASENet mixes three datasets, instead of three label
sets on the same clips. A view hard-links (or copies) its clips from the whole corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbench import atomic
from speechbench.audio import write_audio
from speechbench.corpora import noises
from speechbench.corpora._scaper import import_scaper
from speechbench.corpora.asterisk import LICENSES, Prompt, asterisk_prompts
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.prompts import prompt_split
from speechbench.corpora.sounds import (
    SoundSource,
    event_sources,
    read_sound,
    shared_sound_splits,
    sound_id,
    trim_silence,
)
from speechbench.errors import CorpusError
from speechbench.hashing import stable_int

RATE = 16000
CLIP_SECONDS = 10.0
POOLS = ("train", "dev", "test")
POOL_OF_SPLIT = {"train": "train", "dev": "dev", "test": "test"}


@dataclass(frozen=True)
class Scene:
    background: str  # how the bed is rendered, see _render_bed
    ref_db: float  # background loudness (LUFS)
    snr_db: tuple[float, float]  # event loudness above the background
    events: dict[str, float]  # event class -> expected events per clip


SCENES: dict[str, Scene] = {
    "office": Scene(
        "pink+hum", -48.0, (6.0, 20.0),
        {"notification": 2.2, "speech": 1.3, "alarm": 0.4, "jingle": 0.3, "percussion": 0.3},
    ),
    "home": Scene(
        "brown+hum", -45.0, (6.0, 18.0),
        {"speech": 1.0, "music": 0.8, "animal": 0.8, "alarm": 0.4, "instrument": 0.5},
    ),
    "street": Scene(
        "traffic", -30.0, (3.0, 12.0),
        {"speech": 1.0, "alarm": 0.6, "bird": 0.5, "animal": 0.5, "music": 0.3},
    ),
    "park": Scene(
        "wind", -36.0, (4.0, 15.0),
        {"bird": 1.8, "animal": 1.0, "speech": 0.5, "instrument": 0.3},
    ),
    "cafe": Scene(
        "babble+music", -32.0, (3.0, 10.0),
        {"speech": 1.2, "percussion": 1.0, "music": 0.6, "notification": 0.4, "instrument": 0.3},
    ),
}  # fmt: skip
MAX_EVENTS = 7
MUSIC_EXCERPT_SECONDS = 8.0
MUSIC_EVENT_SECONDS = (2.0, 5.0)
BED_SECONDS = 15.0


def merge_same_class(events: list[list[Any]]) -> list[list[Any]]:
    """Strong labels with overlapping events of one class merged into their union, sorted
    by onset (version 3; a class is either active or not, as DCASE annotations are)."""
    merged: list[list[Any]] = []
    for label, onset, offset in sorted(events, key=lambda e: (e[0], e[1])):
        if merged and merged[-1][0] == label and onset <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], offset)
        else:
            merged.append([label, onset, offset])
    return sorted(merged, key=lambda e: (e[1], e[0]))


def split_sources(keys: list[str]) -> dict[str, str]:
    """Version 1's split: key -> "train" | "test", every third file of a class to test
    (dev clips reused train files). Kept for tests/test_splits_leaks.py."""
    ordered = sorted(keys, key=lambda k: hashlib.sha1(k.encode()).hexdigest())
    return {key: ("test" if i % 3 == 1 else "train") for i, key in enumerate(ordered)}


@dataclass(frozen=True)
class StagedEvent:
    label: str
    key: str
    path: Path  # 16 kHz mono wav in the staging folder
    duration: float
    source: SoundSource


class MiniDcase(Corpus):
    """Acoustic scene classification, audio tagging and sound event detection corpus."""

    name = "mini-dcase"
    # 3: 900 clips, the three views, same-class overlaps merged; 2: the shared split,
    # a dev pool of its own (1: dev reused train files)
    version = "3"
    license = "mixed CC0/CC-BY(-SA)/GPL/LGPL event sounds, see ATTRIBUTION"
    description = (
        "10 s scaper soundscapes of real event sounds (sound themes, CC0 animals, speech, "
        "music) over 5 scene backgrounds; scene, tag and onset/offset labels"
    )
    sample_rate = RATE
    provides = ("labels.scene", "labels.tags", "labels.events")

    LANGUAGES: ClassVar[tuple[str, ...]] = ("en", "es", "fr", "it", "ru")
    CLIPS_PER_SCENE: ClassVar[dict[str, int]] = {"train": 108, "dev": 24, "test": 48}
    SPEECH_EVENT_PROMPTS: ClassVar[int] = 45
    BABBLE_PROMPTS_PER_POOL: ClassVar[int] = 12
    BEDS_PER_SCENE: ClassVar[int] = 4
    SEED: ClassVar[str] = "mini-dcase-1"

    # -- sources ---------------------------------------------------------------------------
    def _speech_prompts(self) -> tuple[list[SoundSource], dict[str, list[Prompt]]]:
        """Speech events (0.8-3.5 s prompts) and babble prompts per pool, each prompt in
        the pool of its shared split."""
        candidates = []
        for language in self.LANGUAGES:
            for prompt in asterisk_prompts(language):
                seconds = sf.info(str(prompt.path)).duration
                if 0.8 <= seconds <= 3.5:
                    candidates.append((f"speech/{language}/{prompt.name}", prompt))
        candidates.sort(key=lambda item: stable_int(self.SEED, item[0]))
        speech = [
            SoundSource(p.source_id, "speech", p.path, f"asterisk-core-sounds-{p.language}-wav",
                        LICENSES[p.language], "Digium/Sangoma Asterisk prompts")
            for _, p in candidates[: self.SPEECH_EVENT_PROMPTS]
        ]  # fmt: skip
        self.speech_splits = {p.source_id: prompt_split(p) for _, p in candidates}
        rest = [p for _, p in candidates[self.SPEECH_EVENT_PROMPTS :]]
        n = self.BABBLE_PROMPTS_PER_POOL
        babble = {pool: [p for p in rest if prompt_split(p) == pool][:n] for pool in POOLS}
        return speech, babble

    def pool_of(self, source: SoundSource, shared: dict[str, str]) -> str:
        """The shared split of an event source: speech by recording (the prompt's shared
        split, held-out speakers included), sounds by class."""
        if source.label == "speech":
            return self.speech_splits[source.key]
        return shared[sound_id(source)]

    def _stage_events(
        self, stage: Path, sources: list[SoundSource]
    ) -> dict[str, list[StagedEvent]]:
        """Write every event source as a trimmed 16 kHz mono wav under
        ``stage/<pool>/foreground/<label>/`` (music: several excerpts per track)."""
        by_label: dict[str, list[SoundSource]] = defaultdict(list)
        for source in sources:
            by_label[source.label].append(source)
        staged: dict[str, list[StagedEvent]] = {pool: [] for pool in POOLS}
        shared = shared_sound_splits()
        for label, members in sorted(by_label.items()):
            pools = {s.key: self.pool_of(s, shared) for s in members}
            for source in members:
                folder = stage / pools[source.key] / "foreground" / label
                stem = source.key.replace("/", "_").replace(":", "_")
                if label == "music":
                    pieces = self._stage_music(folder, stem, source)
                else:
                    target = folder / f"{stem}.wav"
                    if not target.exists():
                        write_audio(target, trim_silence(read_sound(source.path, RATE), RATE), RATE)
                    pieces = [target]
                for piece in pieces:
                    duration = sf.info(str(piece)).frames / RATE
                    staged[pools[source.key]].append(
                        StagedEvent(label, source.key, piece, duration, source)
                    )
        return staged

    def _stage_music(self, folder: Path, stem: str, source: SoundSource) -> list[Path]:
        targets = [folder / f"{stem}-{k}.wav" for k in range(4)]
        if all(t.exists() for t in targets):
            return targets
        track = read_sound(source.path, RATE)
        n = int(MUSIC_EXCERPT_SECONDS * RATE)
        starts = np.linspace(0.1 * len(track), 0.9 * len(track) - n, len(targets)).astype(int)
        for target, start in zip(targets, starts, strict=True):
            write_audio(target, track[start : start + n], RATE)
        return targets

    def _stage_beds(
        self, stage: Path, babble: dict[str, list[Prompt]], music: dict[str, list[StagedEvent]]
    ) -> None:
        """Background beds per pool and scene under ``stage/<pool>/background/<scene>/``."""
        n = int(BED_SECONDS * RATE)
        for pool in POOLS:
            for scene_name, scene in SCENES.items():
                for k in range(self.BEDS_PER_SCENE):
                    target = stage / pool / "background" / scene_name / f"bed-{k}.wav"
                    if target.exists():
                        continue
                    rng = np.random.default_rng(stable_int(self.SEED, pool, scene_name, str(k)))
                    talkers = [p.path for p in babble[pool]]
                    bed = self._render_bed(scene.background, n, rng, talkers, music[pool])
                    write_audio(target, 0.1 * bed / max(float(np.max(np.abs(bed))), 1e-9), RATE)

    @staticmethod
    def _render_bed(
        kind: str, n: int, rng: np.random.Generator, babble: list[Path], music: list[StagedEvent]
    ) -> np.ndarray:
        if kind == "pink+hum":  # ventilation + mains hum of an office
            return noises.coloured_noise("pink", n, rng) + 0.5 * noises.hum(n, RATE, rng, 50.0)
        if kind == "brown+hum":  # quiet room rumble + fridge
            return noises.coloured_noise("brown", n, rng) + 0.3 * noises.hum(n, RATE, rng, 50.0)
        if kind == "traffic":
            return noises.traffic(n, RATE, rng)
        if kind == "wind":
            return noises.wind(n, RATE, rng)
        if kind == "babble+music":  # real talkers + real background music
            talk = noises.babble([read_sound(p, RATE) for p in babble], n, RATE, rng, talkers=8)
            piece = music[int(rng.integers(len(music)))]
            return talk + 0.4 * noises.excerpt(read_sound(piece.path, RATE), n, rng)
        raise CorpusError(f"unknown background kind {kind!r}")

    # -- clips -----------------------------------------------------------------------------
    def _draw_events(
        self, scene: Scene, rng: np.random.Generator, pool: list[StagedEvent]
    ) -> list[dict[str, Any]]:
        by_label: dict[str, list[StagedEvent]] = defaultdict(list)
        for item in pool:
            by_label[item.label].append(item)
        labels = [label for label in scene.events for _ in range(rng.poisson(scene.events[label]))]
        if not labels:
            rates = np.array(list(scene.events.values()))
            labels = [list(scene.events)[int(rng.choice(len(rates), p=rates / rates.sum()))]]
        rng.shuffle(labels)
        events = []
        if not any(by_label[label] for label in scene.events):
            raise CorpusError("no event sources of this scene's classes in this pool")
        labels = [label for label in labels if by_label[label]]  # a class without a file here
        for label in labels[:MAX_EVENTS]:
            item = by_label[label][int(rng.integers(len(by_label[label])))]
            if label == "music":
                duration = float(rng.uniform(*MUSIC_EVENT_SECONDS))
                source_time = float(rng.uniform(0, item.duration - duration))
            else:
                duration = min(item.duration, CLIP_SECONDS)
                source_time = 0.0
            events.append(
                {
                    "item": item,
                    "source_time": source_time,
                    "duration": duration,
                    "event_time": float(rng.uniform(0, CLIP_SECONDS - duration)),
                    "snr": float(rng.uniform(*scene.snr_db)),
                }
            )
        return events

    def render_clip(
        self, stage: Path, pool: str, pool_items: list[StagedEvent], scene_name: str, clip_id: str
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Mix one soundscape with scaper; returns audio and its labels."""
        scaper = import_scaper()

        scene = SCENES[scene_name]
        rng = np.random.default_rng(stable_int(self.SEED, clip_id))
        root = stage / pool
        mixer = scaper.Scaper(
            CLIP_SECONDS,
            fg_path=str(root / "foreground"),
            bg_path=str(root / "background"),
            random_state=int(rng.integers(2**31)),
        )
        mixer.sr = RATE
        mixer.ref_db = scene.ref_db
        mixer.n_channels = 1
        bed = int(rng.integers(self.BEDS_PER_SCENE))
        mixer.add_background(
            label=("const", scene_name),
            source_file=("const", str(root / "background" / scene_name / f"bed-{bed}.wav")),
            source_time=("const", float(rng.uniform(0, BED_SECONDS - CLIP_SECONDS))),
        )
        events = self._draw_events(scene, rng, pool_items)
        for event in events:
            item = event["item"]
            mixer.add_event(
                label=("const", item.label),
                source_file=("const", str(item.path)),
                source_time=("const", event["source_time"]),
                event_time=("const", event["event_time"]),
                event_duration=("const", event["duration"]),
                snr=("const", event["snr"]),
                pitch_shift=None,
                time_stretch=None,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scaper warns about every clipped/const value
            audio, _, annotations, _ = mixer.generate(
                fix_clipping=True, disable_sox_warnings=True, disable_instantiation_warnings=True
            )
        strong = merge_same_class(
            [[label, round(float(on), 3), round(float(off), 3)] for on, off, label in annotations]
        )
        labels = {
            "scene": scene_name,
            "tags": sorted({e[0] for e in strong}),
            "events": strong,
            "event_sources": sorted({e["item"].key for e in events}),
            "background": f"{pool}/{scene_name}/bed-{bed}",
        }
        return np.asarray(audio, dtype=np.float32).reshape(-1), labels

    @staticmethod
    def bed_sources(
        scene_name: str, pool: str, babble: dict[str, list[Prompt]], staged: dict[str, list]
    ) -> list[str]:
        """Recordings a scene's background bed of this pool is made of."""
        if SCENES[scene_name].background != "babble+music":
            return []
        music = {sound_id(e.source) for e in staged[pool] if e.label == "music"}
        return sorted({p.source_id for p in babble[pool]} | music)

    # -- build -----------------------------------------------------------------------------
    def build(self, root: Path) -> tuple[list[Utterance], str]:
        stage = root / "_sources"
        speech, babble = self._speech_prompts()
        sources = event_sources() + speech
        staged = self._stage_events(stage, sources)
        ids = {src.key: sound_id(src) for src in sources}
        self._stage_beds(stage, babble, {p: [s for s in staged[p] if s.label == "music"]
                                         for p in POOLS})  # fmt: skip
        jobs = [
            (split, scene_name, f"{scene_name}-{split}-{i:03d}")
            for split, count in self.CLIPS_PER_SCENE.items()
            for scene_name in SCENES
            for i in range(count)
        ]
        records = []
        for split, scene_name, clip_id in tqdm(jobs, desc=f"build {self.name}", unit="clip"):
            rel = Path("audio") / split / f"{clip_id}.wav"
            label_path = root / "labels" / f"{clip_id}.json"
            if (root / rel).exists() and label_path.exists():  # restart: keep finished clips
                labels = json.loads(label_path.read_text(encoding="utf-8"))
            else:
                pool = POOL_OF_SPLIT[split]
                audio, labels = self.render_clip(stage, pool, staged[pool], scene_name, clip_id)
                write_audio(root / rel, audio, RATE)
                event_ids = sorted({ids[key] for key in labels["event_sources"]})
                labels["sources"] = event_ids + self.bed_sources(scene_name, pool, babble, staged)
                atomic.write_json(label_path, labels)
            records.append(
                Utterance(
                    id=clip_id,
                    path=rel.as_posix(),
                    sample_rate=RATE,
                    duration=CLIP_SECONDS,
                    split=split,
                    labels=labels,
                )
            )
        used = {key for r in records for key in r.labels["event_sources"]}
        used |= {s.key for s in sources if s.label == "music"}  # cafe beds play music too
        return records, self.attribution(sources, used, babble)

    def attribution(
        self, sources: list[SoundSource], used: set[str], babble: dict[str, list[Path]]
    ) -> str:
        lines = [
            f"{self.name} v{self.version}: generated by speechbench with scaper (BSD-3-Clause).",
            "",
            "Event recordings used (key, origin, licence, copyright):",
        ]
        for source in sorted(sources, key=lambda s: s.key):
            if source.key in used:
                lines.append(
                    f"  {source.key} ({source.origin}): {source.license}; {source.copyright}"
                )
        lines += [
            "",
            "Backgrounds: office/home/street/park beds are synthetic (coloured noise, hum, "
            "traffic, wind); cafe beds mix real babble from asterisk-core-sounds-* prompts "
            f"({', '.join(sorted(set(LICENSES.values())))}) with asterisk-moh-opsound-wav "
            "music (CC-BY-SA-3.0).",
        ]
        return "\n".join(lines)


# -- views ---------------------------------------------------------------------------------
VIEWS = ("asc", "tag", "sed")
VIEW_LABEL = {"asc": "scene", "tag": "tags", "sed": "events"}


def view_of(clip_id: str) -> str:
    """The view a clip belongs to: ``VIEWS[i % 3]`` for clip ``SCENE-SPLIT-i``."""
    return VIEWS[int(clip_id.rsplit("-", 1)[1]) % len(VIEWS)]


class MiniDcaseView(Corpus):
    """One third of mini-dcase's clips (every split, every scene) with one label type."""

    view: ClassVar[str]
    version = MiniDcase.version
    license = MiniDcase.license
    sample_rate = RATE

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        whole = MiniDcase(data_dir=self.data_dir)
        key = VIEW_LABEL[self.view]
        records = []
        for record in whole.prepare():
            if view_of(record.id) != self.view:
                continue
            target = root / record.path
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp")
                try:
                    os.link(whole.audio_path(record), tmp)
                except OSError:  # another file system: copy
                    shutil.copyfile(whole.audio_path(record), tmp)
                tmp.replace(target)
            labels = {key: record.labels[key], "sources": record.labels["sources"]}
            records.append(
                Utterance(record.id, record.path, RATE, record.duration, record.split,
                          labels=labels)
            )  # fmt: skip
        header = (
            f"{self.name} v{self.version}: the {self.view} view of mini-dcase "
            f"v{whole.version} (every third clip, {key} labels only).\n\n"
        )
        return records, header + (whole.root / "ATTRIBUTION").read_text(encoding="utf-8")


class MiniDcaseAsc(MiniDcaseView):
    name = "mini-dcase-asc"
    view = "asc"
    description = "mini-dcase's ASC view: 300 clips (180/40/80), scene labels only"
    provides = ("labels.scene",)


class MiniDcaseTag(MiniDcaseView):
    name = "mini-dcase-tag"
    view = "tag"
    description = "mini-dcase's tagging view: 300 clips (180/40/80), clip tags only"
    provides = ("labels.tags",)


class MiniDcaseSed(MiniDcaseView):
    name = "mini-dcase-sed"
    view = "sed"
    description = "mini-dcase's SED view: 300 clips (180/40/80), strong event labels only"
    provides = ("labels.events",)
