"""espeak-ng speech synthesis with exact phoneme and word timing, through libespeak-ng.

The library comes from PyPI ``espeakng-loader`` (it ships ``libespeak-ng.so`` 1.52 and
its ``espeak-ng-data``), or else from Debian's ``libespeak-ng1`` + ``espeak-ng-data``.
With ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA`` the library
reports every phoneme (in IPA) and every word together with the output sample at
which it starts, so alignments are exact by construction, not estimated.

The ctypes binding below is hand-written on purpose: no maintained Python binding
exposes phoneme events (phonemizer and espeakng-style wrappers only return phoneme
strings or audio without timing). It mirrors ``espeak-ng/speak_lib.h`` (API 1.x).
"""

from __future__ import annotations

import _ctypes
import ctypes
import ctypes.util
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechbench.errors import CorpusError

SAMPLE_RATE = 22050  # libespeak-ng always synthesises at 22.05 kHz
SILENCE = "sil"  # label of pauses and of the lead-in/-out silence

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4

DEBIAN_DATA = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``; ``sample`` is the output sample at which the event happens."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input
        ("length", ctypes.c_int),  # word length in characters (word events)
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Synthesis:
    """One synthesised utterance: audio plus exact phone and word intervals in seconds.

    ``phones`` are raw espeak IPA phonemes (stress marks kept) with pauses and the
    lead-in/-out as :data:`SILENCE`; they tile ``[0, duration]`` without gaps.
    """

    audio: np.ndarray  # float32 in [-1, 1] at SAMPLE_RATE
    sample_rate: int
    phones: list[list] = field(default_factory=list)  # [[ipa, start_s, end_s], ...]
    words: list[list] = field(default_factory=list)  # [[word, start_s, end_s], ...]

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def library_source() -> tuple[Path, Path]:
    """(shared library, data folder): espeakng-loader first, then Debian's libespeak-ng1."""
    try:
        import espeakng_loader

        return Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
    except (ImportError, RuntimeError):
        pass
    found = ctypes.util.find_library("espeak-ng")
    if found and DEBIAN_DATA.exists():
        return Path(found), DEBIAN_DATA
    raise CorpusError(
        "espeak-ng is not installed: `pip install espeakng-loader` (ships libespeak-ng and "
        "its data) or `apt-get install libespeak-ng1 espeak-ng-data`"
    )


def library_description() -> str:
    """Which espeak-ng this is, for ATTRIBUTION files (package and library version)."""
    lib_path, _ = library_source()
    try:
        from importlib.metadata import version

        package = f"PyPI espeakng-loader {version('espeakng-loader')}"
    except Exception:  # noqa: BLE001 - any metadata failure means the Debian library
        package = "Debian libespeak-ng1"
    with _LOCK:
        fresh = _Engine()
        try:
            fresh.lib.espeak_Info.restype = ctypes.c_char_p
            lib_version = fresh.lib.espeak_Info(None).decode()
        finally:
            fresh.close()
    return f"espeak-ng {lib_version} ({package}, {lib_path.name})"


class _Engine:
    """One freshly loaded libespeak-ng.

    The C library keeps static state across calls (pitch flutter phase, wave generator
    position...) that ``espeak_Terminate`` does not reset, so the same text came out a
    few samples different depending on what was spoken before. Every utterance is
    therefore spoken by a freshly ``dlopen``-ed library that is ``dlclose``-d after it
    (about 5 ms), which makes each file depend only on its own arguments: a restarted
    build produces the same bytes as an uninterrupted one.
    """

    def __init__(self) -> None:
        lib_path, data_path = library_source()
        try:
            self.lib = ctypes.CDLL(str(lib_path))
        except OSError as exc:
            raise CorpusError(f"cannot load espeak-ng library {lib_path}: {exc}") from None
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), options
        )
        if rate != SAMPLE_RATE:
            raise CorpusError(
                f"espeak-ng at {lib_path} failed to initialise with data {data_path} "
                f"(returned {rate}); reinstall espeakng-loader"
            )
        self.data_path = data_path
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            raw = bytes(ev.id.string) if ev.type == _EVENT_PHONEME else b""
            self._events.append((ev.type, ev.text_position, ev.length, ev.sample, raw))
            i += 1
        return 0  # 0 = continue synthesis

    def synthesize(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int
    ) -> tuple[np.ndarray, list[tuple[int, int, int, int, bytes]]]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise CorpusError(
                f"espeak-ng has no voice {voice!r}; list voices with `espeak-ng --voices` "
                f"(variants: `espeak-ng --voices=variant`)"
            )
        for param, value in (
            (_PARAM_RATE, rate),
            (_PARAM_PITCH, pitch),
            (_PARAM_RANGE, pitch_range),
            (_PARAM_VOLUME, 100),
        ):
            self.lib.espeak_SetParameter(param, int(value), 0)
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):  # klatt voices add random noise
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        status = self.lib.espeak_Synth(
            buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        if status != 0:
            raise CorpusError(f"espeak-ng failed (status {status}) on text {text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events

    def close(self) -> None:
        self.lib.espeak_Terminate()
        handle = self.lib._handle
        del self.lib
        _ctypes.dlclose(handle)  # drops the library's static state with it


_LOCK = threading.Lock()  # the C library is process-global: one utterance at a time


def _speak(
    text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int
) -> tuple[np.ndarray, list[tuple[int, int, int, int, bytes]]]:
    with _LOCK:
        fresh = _Engine()
        try:
            return fresh.synthesize(text, voice, rate, pitch, pitch_range, seed)
        finally:
            fresh.close()


def _decode_phoneme(raw: bytes) -> str:
    """The event carries up to 8 UTF-8 bytes, NUL-padded; an empty name is a pause."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="ignore")


def synthesize(
    text: str,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    seed: int = 0,
) -> Synthesis:
    """Speak ``text`` with an espeak-ng ``voice`` (e.g. ``"en-us+f3"``); rate in words per
    minute, pitch and pitch_range 0-100. Same arguments give the same samples."""
    samples, events = _speak(text, voice, rate, pitch, pitch_range, seed)
    if samples.size == 0:
        raise CorpusError(f"espeak-ng produced no audio for text {text!r} with voice {voice}")
    total = len(samples)
    sr = SAMPLE_RATE

    # Phones: each starts at its event sample and ends where the next one starts.
    starts: list[tuple[int, str]] = []
    words: list[tuple[int, str, int]] = []  # (start sample, word, index into starts)
    for kind, position, length, sample, raw in events:
        sample = min(max(sample, 0), total)
        if kind == _EVENT_PHONEME:
            name = _decode_phoneme(raw) or SILENCE
            starts.append((sample, name))
        elif kind == _EVENT_WORD:
            # text_position counts characters (1-based) of the decoded text
            word = text[position - 1 : position - 1 + length] if position > 0 else ""
            words.append((sample, word, len(starts)))
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, SILENCE))
        words = [(s, w, i + 1) for s, w, i in words]
    phones: list[list] = []
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        if end <= start:
            continue  # zero-length phoneme (espeak emits a few): nothing to align
        if name == SILENCE and phones and phones[-1][0] == SILENCE:
            phones[-1][2] = end / sr  # merge adjacent pauses
            continue
        phones.append([name, start / sr, end / sr])
    if phones and phones[-1][2] < total / sr:
        phones.append([SILENCE, phones[-1][2], total / sr])

    word_spans: list[list] = []
    for i, (_start, word, first_phone) in enumerate(words):
        next_phone = words[i + 1][2] if i + 1 < len(words) else len(starts)
        word_phones = [s for s, name in starts[first_phone:next_phone] if name != SILENCE]
        last = next_phone - 1
        while last >= first_phone and starts[last][1] == SILENCE:
            last -= 1
        if not word_phones or last < first_phone:
            continue
        end = starts[last + 1][0] if last + 1 < len(starts) else total
        word_spans.append([word, word_phones[0] / sr, end / sr])

    audio = samples.astype(np.float32) / 32768.0
    return Synthesis(audio=audio, sample_rate=sr, phones=phones, words=word_spans)
