"""mini-tse: target speaker extraction from two-speaker mixtures of real speech.

Each mixture is a whole target utterance plus an interferer utterance of another
speaker (cut at a random offset, or zero-padded, to the target's length) at a
target-to-interferer ratio drawn uniformly from [-5, 5] dB. The enrollment utterance is
a different utterance of the target speaker, never the target utterance itself.
Splits are the shared ones (speechbench.corpora.splits): test mixtures are made only of
held-out speakers' recordings (speakers never seen in training, as in mini-sv), train
mixtures only of the other speakers' train recordings and dev mixtures only of their
dev recordings; a mixture's ``labels["sources"]`` lists target, interferer and
enrollment, all of the mixture's split.

Each record has three audio streams: ``main`` (the mixture, ``mix/SPLIT/ID.wav``),
``enroll`` (``enroll/SPEAKER/ID.wav``, shared by mixtures) and ``reference``
(``s1/SPLIT/ID.wav``: the target exactly as it is in the mixture, the extraction
reference); ``mixtures.jsonl`` holds one spec per mixture. ``mixture - s1`` is the
scaled interferer.

Training speakers are augmented (version 3): every train mixture's target speaker is a
*pseudo-speaker*, a real training speaker at a speed-perturbation factor of
:data:`SPEED_FACTORS` (resampling: tempo, pitch and formants all scale; Ko et al.,
"Audio augmentation for speech recognition", Interspeech 2015; each factor a new
identity as in Kaldi's and WeSpeaker's speaker-recognition recipes). Target and
enrollment of one mixture share the factor; the interferer is another real speaker at
its own factor. With 8 real training speakers this gives 56 training identities, so the
extractor cannot memorise a handful of voiceprints. Dev and test are version 2's
mixtures, unchanged (no perturbation). A perturbed recording keeps its source id (it is
the same recording, so the shared split and the leak check apply to it unchanged).

``mini-tse-2ch`` (:class:`MiniTse2ch`) renders the same specs in an anechoic free field
with pyroomacoustics: two microphones 7 cm apart, target and interferer at different
directions 1-2 m away (the LiMuSE setup). Its ``main`` stream is one 2-channel file;
``reference`` holds the target image at channel 0 (the reference microphone).
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from speechbench import atomic, audio
from speechbench.audio import write_audio
from speechbench.corpora import speakers, splits
from speechbench.corpora.base import SPLITS, Corpus, Utterance
from speechbench.corpora.speakers import SourceUtt
from speechbench.errors import CorpusError

SEED = 0
MIXTURES = {"train": 800, "dev": 80, "test": 160}
V2_TRAIN_MIXTURES = 400  # drawn (not rendered) so dev and test specs stay version 2's
SPEED_FACTORS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)  # train pseudo-speakers
SNR_RANGE_DB = (-5.0, 5.0)
MIN_TARGET_SECONDS = 1.5
MIN_ENROLL_SECONDS = 1.5
TARGET_RMS = 0.05  # -26 dBFS before mixing
PEAK = 0.9  # mixtures are scaled down (with their references) to stay below this peak
MIC_SPACING_M = 0.07
SOURCE_DISTANCE_M = (1.0, 2.0)
MIN_ANGLE_GAP_DEG = 20.0


@dataclass(frozen=True)
class MixSpec:
    id: str
    split: str
    target_id: str
    interferer_id: str
    enroll_id: str
    snr_db: float
    interferer_offset: float  # seconds into the interferer (0 when it is padded)
    target_angle_deg: float  # used by the 2-channel variant only
    interferer_angle_deg: float
    target_distance_m: float
    interferer_distance_m: float
    target_speed: float = 1.0  # speed-perturbation factor of target and enrollment
    interferer_speed: float = 1.0


def split_pools(sources: list[SourceUtt]) -> dict[str, dict[str, list[SourceUtt]]]:
    """split -> speaker -> recordings of that shared split. Held-out speakers are all
    test; another speaker's shared-test recordings are left out (a seen speaker)."""
    pools: dict[str, dict[str, list[SourceUtt]]] = {s: defaultdict(list) for s in SPLITS}
    for src in sorted(sources, key=lambda s: s.id):
        split = src.shared_split
        if split == "test" and not splits.speaker_held_out(src.speaker):
            continue
        pools[split][src.speaker].append(src)
    return pools


def make_specs(sources: list[SourceUtt], counts: dict[str, int], seed: int) -> list[MixSpec]:
    """Seeded mixture specs. Dev and test are drawn exactly as in version 2 (same seed,
    same random sequence, after version 2's 400 unperturbed train draws); train is
    drawn from its own seeded generator over speed-perturbed pseudo-speakers."""
    pools = split_pools(sources)
    v2_counts = {"train": V2_TRAIN_MIXTURES, "dev": counts["dev"], "test": counts["test"]}
    rng = random.Random(seed)
    held: list[MixSpec] = []
    for split in ("train", "dev", "test"):
        specs = _draw(pools[split], split, v2_counts[split], rng, (1.0,))
        held += specs if split != "train" else []
    train = _draw(pools["train"], "train", counts["train"], random.Random(seed + 1), SPEED_FACTORS)
    return train + held


def _draw(
    pool: dict[str, list[SourceUtt]],
    split: str,
    count: int,
    rng: random.Random,
    factors: tuple[float, ...],
) -> list[MixSpec]:
    """``count`` mixtures of one split: target (a speaker at a factor of ``factors``),
    enrollment (another utterance, same factor), interferer (another speaker, its own
    factor), SNR and geometry. With ``factors=(1.0,)`` this is version 2's draw."""
    names = sorted(pool)
    if len(names) < 2:
        raise CorpusError(f"mini-tse {split}: needs two or more speakers, found {names}")
    # a target speaker needs a second utterance of this split to enroll with
    targets_from = [n for n in names if len(pool[n]) >= 2] or names
    augment = len(factors) > 1
    specs = []
    for k in range(count):
        target_speaker = rng.choice(targets_from)
        speed = rng.choice(factors) if augment else 1.0
        utts = pool[target_speaker]
        targets = [u for u in utts if u.duration / speed >= MIN_TARGET_SECONDS] or utts
        target = rng.choice(targets)
        enrolls = [u for u in utts if u.id != target.id]
        enrolls = [u for u in enrolls if u.duration / speed >= MIN_ENROLL_SECONDS] or enrolls
        if not enrolls:
            raise CorpusError(f"speaker {target_speaker} has one utterance: no enrollment")
        enroll = rng.choice(enrolls)
        other = rng.choice([n for n in names if n != target_speaker])
        speed_i = rng.choice(factors) if augment else 1.0
        candidates = pool[other]
        length = target.duration / speed
        longer = [u for u in candidates if u.duration / speed_i >= length]
        interferer = rng.choice(longer or candidates)
        spare = max(0.0, interferer.duration / speed_i - length)
        angle_t = rng.uniform(0.0, 180.0)
        angle_i = rng.uniform(0.0, 180.0 - MIN_ANGLE_GAP_DEG)
        if angle_i > angle_t - MIN_ANGLE_GAP_DEG:  # keep the sources apart
            angle_i += MIN_ANGLE_GAP_DEG
        specs.append(
            MixSpec(
                id=f"tse-{split}-{k:04d}",
                split=split,
                target_id=target.id,
                interferer_id=interferer.id,
                enroll_id=enroll.id,
                snr_db=round(rng.uniform(*SNR_RANGE_DB), 3),
                interferer_offset=round(rng.uniform(0.0, spare), 4),
                target_angle_deg=round(angle_t, 2),
                interferer_angle_deg=round(angle_i % 180.0, 2),
                target_distance_m=round(rng.uniform(*SOURCE_DISTANCE_M), 3),
                interferer_distance_m=round(rng.uniform(*SOURCE_DISTANCE_M), 3),
                target_speed=speed,
                interferer_speed=speed_i,
            )
        )
    return specs


def perturb_speed(wav: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (sox ``speed``): the signal played ``factor`` times faster,
    i.e. read as if sampled at ``factor`` x 16 kHz and resampled to 16 kHz (torchaudio's
    band-limited resampler); duration / factor, pitch and formants x factor."""
    if factor == 1.0:
        return wav
    rate = int(round(speakers.SAMPLE_RATE * factor))
    return audio.resample(wav, rate, speakers.SAMPLE_RATE).numpy()


def pseudo_speaker(speaker: str, factor: float) -> str:
    """The identity of a speaker at a speed factor (the speaker itself at 1.0)."""
    return speaker if factor == 1.0 else f"{speaker}~sp{factor:.2f}"


def fit_length(wav: np.ndarray, length: int, offset: int) -> np.ndarray:
    """``length`` samples of ``wav`` from ``offset``, zero-padded at the end if short."""
    out = np.zeros(length, dtype=np.float32)
    piece = wav[offset : offset + length]
    out[: piece.size] = piece
    return out


def snr_gain(target: np.ndarray, interferer: np.ndarray, snr_db: float) -> float:
    """Gain g such that 10 log10(|target|^2 / |g interferer|^2) = snr_db."""
    power_t = float(np.sum(target.astype(np.float64) ** 2))
    power_i = float(np.sum(interferer.astype(np.float64) ** 2))
    if power_t == 0.0 or power_i == 0.0:
        raise CorpusError("mini-tse: a silent target or interferer cannot be mixed at an SNR")
    return math.sqrt(power_t / (power_i * 10.0 ** (snr_db / 10.0)))


def measured_snr(target: np.ndarray, interferer: np.ndarray) -> float:
    target, interferer = target.astype(np.float64), interferer.astype(np.float64)
    return 10.0 * math.log10(float(np.sum(target**2)) / float(np.sum(interferer**2)))


class MiniTse(Corpus):
    name = "mini-tse"
    # 2: shared split (1: dev mixtures reused train recordings); enrollment and reference
    # are audio streams (were paths in labels), a 2-channel mixture is one file;
    # 3: 800 train mixtures of speed-perturbed pseudo-speakers (dev, test as in 2)
    version = "3"
    license = "CC-BY-SA-3.0, CC-BY-3.0, CC-BY-SA-3.0-IT, GPL-2, BSD-style (per source)"
    description = (
        "Target speaker extraction: two-speaker mixtures of real speech (Asterisk + Fish "
        "Fillets voices) at -5..5 dB, with an enrollment utterance of the target."
    )
    sample_rate = speakers.SAMPLE_RATE
    provides = ("speaker",)
    channels = 1
    streams = {"main": 1, "enroll": 1, "reference": 1}

    def sources(self) -> list[SourceUtt]:
        return speakers.real_sources()

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        sources = self.sources()
        by_id = {s.id: s for s in sources}
        specs = make_specs(sources, MIXTURES, SEED)
        atomic.write_text(
            root / "mixtures.jsonl",
            "".join(json.dumps(asdict(s), sort_keys=True) + "\n" for s in specs),
        )
        records = []
        for spec in tqdm(specs, desc=f"{self.name} mixtures", unit="mix"):
            records.append(self._mixture(root, spec, by_id))
        origins = {by_id[i].origin for s in specs for i in (s.target_id, s.interferer_id)}
        extra = [self._method_note()]
        return records, speakers.attribution(self.name, origins, extra)

    def _method_note(self) -> str:
        return (
            "\nMixtures: target + interferer at a ratio uniform in [-5, 5] dB; "
            "enrollment is another utterance of the target speaker. Train mixtures use "
            f"speed-perturbed voices (factors {', '.join(map(str, SPEED_FACTORS))}, by "
            "resampling), each factor a new training speaker."
        )

    def _enrollment(self, root: Path, src: SourceUtt, factor: float) -> str:
        """Enrollment utterances are stored at 16 kHz (speed-perturbed like their
        target), shared by mixtures."""
        rel = Path("enroll") / pseudo_speaker(src.speaker, factor) / f"{src.id}.wav"
        if factor == 1.0:
            speakers.convert(src, root / rel)
        elif not (root / rel).exists():
            write_audio(root / rel, perturb_speed(speakers.decode(src), factor), self.sample_rate)
        return rel.as_posix()

    def _render(
        self, target: np.ndarray, interferer: np.ndarray, spec: MixSpec
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Mixture channels and the target reference, both before peak scaling."""
        target = target * (TARGET_RMS / max(float(np.sqrt(np.mean(target**2))), 1e-8))
        interferer = interferer * snr_gain(target, interferer, spec.snr_db)
        return [target + interferer], target

    def _mixture(self, root: Path, spec: MixSpec, by_id: dict[str, SourceUtt]) -> Utterance:
        try:
            target_src, interferer_src = by_id[spec.target_id], by_id[spec.interferer_id]
            enroll_src = by_id[spec.enroll_id]
        except KeyError as exc:
            raise CorpusError(
                f"{self.name}: mixture {spec.id} names unknown source {exc}"
            ) from None
        mix_rel = Path("mix") / spec.split / f"{spec.id}.wav"
        ref_rel = Path("s1") / spec.split / f"{spec.id}.wav"
        enroll_rel = self._enrollment(root, enroll_src, spec.target_speed)
        if not all((root / p).exists() for p in [mix_rel, ref_rel]):
            target = perturb_speed(speakers.decode(target_src), spec.target_speed)
            interferer = perturb_speed(speakers.decode(interferer_src), spec.interferer_speed)
            offset = int(round(spec.interferer_offset * self.sample_rate))
            interferer = fit_length(interferer, target.size, offset)
            channels, reference = self._render(target, interferer, spec)
            gain = min(1.0, PEAK / max(max(float(np.abs(c).max()) for c in channels), 1e-8))
            write_audio(root / ref_rel, reference * gain, self.sample_rate)
            mixture = channels[0] if len(channels) == 1 else np.stack(channels)
            write_audio(root / mix_rel, mixture * gain, self.sample_rate)
        labels: dict[str, Any] = {
            "target_speaker": target_src.speaker,
            "interferer_speaker": interferer_src.speaker,
            "target_id": target_src.id,
            "interferer_id": interferer_src.id,
            "enroll": enroll_src.id,
            "snr_db": spec.snr_db,
            "target_speed": spec.target_speed,
            "interferer_speed": spec.interferer_speed,
            "target_voice": pseudo_speaker(target_src.speaker, spec.target_speed),
            "sources": [target_src.source_id, interferer_src.source_id, enroll_src.source_id],
        }
        if self.channels > 1:
            labels |= {
                "mic_spacing_m": MIC_SPACING_M,
                "reference_channel": 0,
                "target_angle_deg": spec.target_angle_deg,
                "interferer_angle_deg": spec.interferer_angle_deg,
                "target_distance_m": spec.target_distance_m,
                "interferer_distance_m": spec.interferer_distance_m,
            }
        return Utterance(
            id=spec.id,
            path=mix_rel.as_posix(),
            streams={"enroll": enroll_rel, "reference": ref_rel.as_posix()},
            sample_rate=self.sample_rate,
            duration=speakers.duration_of(root / mix_rel),
            split=spec.split,
            speaker=target_src.speaker,
            language=target_src.language,
            text=target_src.text,
            labels=labels,
        )


class MiniTse2ch(MiniTse):
    name = "mini-tse-2ch"
    description = (
        "mini-tse rendered in an anechoic free field (pyroomacoustics): two microphones "
        "7 cm apart, sources 1-2 m away at different directions (LiMuSE setup)."
    )
    channels = 2
    streams = {"main": 2, "enroll": 1, "reference": 1}

    def _method_note(self) -> str:
        return super()._method_note() + (
            "\nTwo-channel anechoic rendering with pyroomacoustics (MIT licence), "
            "2 microphones 7 cm apart; the SNR holds at channel 0."
        )

    def _render(
        self, target: np.ndarray, interferer: np.ndarray, spec: MixSpec
    ) -> tuple[list[np.ndarray], np.ndarray]:
        target = target * (TARGET_RMS / max(float(np.sqrt(np.mean(target**2))), 1e-8))
        images_t = anechoic_images(target, spec.target_angle_deg, spec.target_distance_m)
        images_i = anechoic_images(
            interferer, spec.interferer_angle_deg, spec.interferer_distance_m
        )
        images_i = images_i * snr_gain(images_t[0], images_i[0], spec.snr_db)
        level = TARGET_RMS / max(float(np.sqrt(np.mean(images_t[0] ** 2))), 1e-8)
        mixture = (images_t + images_i) * level
        images_t = images_t * level
        return [mixture[0], mixture[1]], images_t[0]


def anechoic_images(signal: np.ndarray, angle_deg: float, distance_m: float) -> np.ndarray:
    """The signal as heard by two microphones 7 cm apart in free field: (2, len(signal))."""
    import pyroomacoustics as pra

    room = pra.AnechoicRoom(dim=2, fs=speakers.SAMPLE_RATE)
    mics = np.array([[-MIC_SPACING_M / 2, MIC_SPACING_M / 2], [0.0, 0.0]])
    room.add_microphone_array(mics)
    angle = math.radians(angle_deg)
    position = [distance_m * math.cos(angle), distance_m * math.sin(angle)]
    room.add_source(position, signal=signal.astype(np.float64))
    room.simulate()
    return np.asarray(room.mic_array.signals[:, : signal.size], dtype=np.float32)
