"""Run a lhotse recipe on a local copy and turn its manifests into :class:`Utterance` records.

lhotse's recipes know the official layouts, so the loaders that can use one do not
parse those layouts again. Two things are added around them here, once:
- errors: a recipe that asserts, fails to read a file or *skips* an item it cannot
  find (lhotse logs "No such file" and goes on) becomes a one-line CorpusError naming
  the item, so no corpus is ever silently partial;
- conversion: RecordingSet + SupervisionSet -> Utterance, with the file's real rate.
Only ``prepare_*`` functions are called; never lhotse's downloaders.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from typing import Any

from speechbench.corpora.base import Utterance
from speechbench.errors import CorpusError

_UNREADABLE = re.compile(r"Fetching info about audio from '(.+?)' failed")
_SOUNDFILE_REASON = re.compile(r"LibsndfileError'>: (?:Error opening '.+?': )?(.+)")


class _MissingFileLog(logging.Handler):
    """Collects lhotse's warnings about files it skipped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("No such file"):
            self.messages.append(message)


def import_recipe_module(corpus: str, module: str = "") -> Any:
    """``lhotse.recipes`` (or one recipe module); a missing lhotse is a CorpusError."""
    # lhotse probes torchaudio when soundfile cannot read a file; the shim keeps that
    # import from failing on the CUDA-linked extension.
    from speechbench._torchaudio import torchaudio  # noqa: F401

    name = f"lhotse.recipes.{module}" if module else "lhotse.recipes"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise CorpusError(
            f"corpus {corpus}: needs the lhotse package ({exc}); "
            "install it with `pip install lhotse torch==2.13.0`"
        ) from None


def run_recipe(corpus: str, recipe: str, **kwargs: Any) -> Any:
    """Call ``lhotse.recipes.<recipe>(**kwargs)``; any failure is a CorpusError."""
    recipes = import_recipe_module(corpus)
    handler = _MissingFileLog()
    root_logger = logging.getLogger()  # lhotse warns through logging.warning()
    old_level = root_logger.level
    root_logger.setLevel(min(old_level or logging.WARNING, logging.WARNING))
    root_logger.addHandler(handler)
    failure = None
    try:
        result = getattr(recipes, recipe)(**kwargs)
    except Exception as exc:  # assertion, AudioLoadingError, KeyError, ... from the recipe
        failure = _one_line(corpus, recipe, exc)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
    # a skipped file explains a later failure (e.g. a part left empty), so it comes first
    if handler.messages:
        more = len(handler.messages) - 1
        raise CorpusError(
            f"corpus {corpus}: {handler.messages[0]} (listed in the corpus metadata"
            f"{f', and {more} more' if more else ''}); restore the missing audio"
        )
    if failure is not None:
        raise CorpusError(failure)
    return result


def _one_line(corpus: str, recipe: str, exc: Exception) -> str:
    """lhotse's audio errors list every backend it tried over several lines; keep the
    file and soundfile's reason, which is what the user can act on."""
    message = str(exc).strip()
    unreadable = _UNREADABLE.search(message)
    if unreadable:
        reason = _SOUNDFILE_REASON.search(message)
        why = reason.group(1).strip() if reason else "no audio backend could read it"
        return f"{unreadable.group(1)}: cannot read audio ({why}); replace the file"
    first_line = (message.splitlines() or [repr(exc)])[0]
    return f"corpus {corpus}: lhotse {recipe} failed: {type(exc).__name__}: {first_line}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def to_utterances(
    manifests: dict[str, Any],
    split: str | Callable[[Any], str],
    language: str | None = None,
) -> list[Utterance]:
    """One Utterance per supervision of a whole-file recording.

    ``manifests`` holds a RecordingSet and a SupervisionSet (under any keys: lhotse's
    AISHELL-3 recipe returns them under swapped keys, so they are told apart by type).
    ``split`` is a split name or a function of the supervision. ``language`` replaces
    lhotse's language names ("English") with the ISO code the other corpora use.
    """
    from lhotse import RecordingSet, SupervisionSet

    values = list(manifests.values())
    recordings = next((v for v in values if isinstance(v, RecordingSet)), None)
    supervisions = next((v for v in values if isinstance(v, SupervisionSet)), None)
    if recordings is None or supervisions is None:
        raise CorpusError(f"lhotse returned no recordings/supervisions (keys: {sorted(manifests)})")
    records = []
    for sup in supervisions:
        rec = recordings[sup.recording_id]
        if rec.num_channels != 1:
            raise CorpusError(
                f"{rec.sources[0].source}: has {rec.num_channels} channels, speechbench expects "
                "mono; downmix it (e.g. `sox in.wav -c 1 out.wav`)"
            )
        if sup.start > 1e-3 or abs(sup.duration - rec.duration) > 1e-2:
            raise CorpusError(
                f"{rec.sources[0].source}: supervision {sup.id} covers {sup.start:.2f}-"
                f"{sup.end:.2f} s of a {rec.duration:.2f} s file; speechbench manifests hold "
                "whole files"
            )
        labels: dict[str, Any] = {}
        if sup.gender:
            labels["gender"] = sup.gender
        for key, value in (sup.custom or {}).items():
            if value not in (None, ""):
                labels[key] = _json_safe(value)
        if sup.alignment and "word" in sup.alignment:
            labels["words"] = [
                [item.symbol, round(item.start, 4), round(item.end, 4)]
                for item in sup.alignment["word"]
            ]
        records.append(
            Utterance(
                id=sup.id,
                path=str(rec.sources[0].source),
                sample_rate=int(rec.sampling_rate),
                duration=float(rec.duration),
                split=split if isinstance(split, str) else split(sup),
                speaker=sup.speaker,
                language=language or sup.language,
                text=sup.text,
                labels=labels,
            )
        )
    return records
