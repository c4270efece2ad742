"""Readers for the files ``speechbench score`` accepts, one per metric input kind.

Each reader turns the user's reference / hypothesis files into the positional inputs
of the metric function, paired by id, and raises a one-line ConfigError naming the
file, line and what to fix. Formats (documented in docs/metrics.md):

- text / labels / values: ``<id> <rest of line>`` (Kaldi ``text`` style); values may
  carry a third column, the system id, in the reference file.
- trials: ``<enroll> <test> target|nontarget`` or VoxCeleb ``1|0 <enroll> <test>``;
  scores: ``<enroll> <test> <score>``.
- tagging / lid: reference ``<id> <label>[,<label>...]``; hypothesis CSV with a header
  ``id,<class1>,<class2>,...`` and one row of scores per clip.
- events: DCASE tab/space separated ``<file> <onset> <offset> <label>``; a line with
  only ``<file>`` declares a file without events.
- audio / embeddings: directories of audio files (or ``.npy`` vectors) paired by
  relative path.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from speechbench.errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_keyed(path: Path) -> dict[str, str]:
    """``<id> <rest>`` lines as {id: rest}; a repeated id is an error."""
    out: dict[str, str] = {}
    for number, line in _lines(path):
        key, _, rest = line.partition(" ")
        if "\t" in key:
            key, _, rest = line.partition("\t")
        if key in out:
            raise ConfigError(f"{path}:{number}: id {key!r} appears twice")
        out[key] = rest.strip()
    if not out:
        raise ConfigError(f"{path}: no lines to score")
    return out


def pair_keys(
    ref: dict[str, Any], hyp: dict[str, Any], ref_path: Path, hyp_path: Path
) -> list[str]:
    """Reference ids in order; every one must be in the hypothesis and vice versa."""
    missing = [k for k in ref if k not in hyp]
    extra = [k for k in hyp if k not in ref]
    if missing:
        raise ConfigError(
            f"{hyp_path}: no hypothesis for {len(missing)} reference id(s), e.g. {missing[:3]}; "
            "add them (an empty output is a line with the id alone)"
        )
    if extra:
        raise ConfigError(f"{hyp_path}: {len(extra)} id(s) not in {ref_path}, e.g. {extra[:3]}")
    return list(ref)


def load_text(ref: Path, hyp: Path, normalize: Callable[[str], str] | None = None):
    refs, hyps = read_keyed(ref), read_keyed(hyp)
    keys = pair_keys(refs, hyps, ref, hyp)
    norm = normalize or (lambda s: " ".join(s.split()))
    return (([norm(refs[k]) for k in keys], [norm(hyps[k]) for k in keys]), keys)


def load_labels(ref: Path, hyp: Path):
    refs, hyps = read_keyed(ref), read_keyed(hyp)
    keys = pair_keys(refs, hyps, ref, hyp)
    return ([refs[k] for k in keys], [hyps[k] for k in keys]), keys


def _number(value: str, path: Path, key: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{path}: value {value!r} for id {key!r} is not a number") from None
    if not np.isfinite(number):
        raise ConfigError(f"{path}: value for id {key!r} is NaN or inf")
    return number


def load_values(ref: Path, hyp: Path, need_systems: bool = False):
    refs, hyps = read_keyed(ref), read_keyed(hyp)
    keys = pair_keys(refs, hyps, ref, hyp)
    truth, systems = [], []
    for k in keys:
        fields = refs[k].split()
        if not fields:
            raise ConfigError(f"{ref}: id {k!r} has no value")
        truth.append(_number(fields[0], ref, k))
        systems.append(fields[1] if len(fields) > 1 else None)
    preds = [_number(hyps[k].split()[0] if hyps[k] else "", hyp, k) for k in keys]
    inputs: tuple = (np.array(truth), np.array(preds))
    if need_systems:
        if any(s is None for s in systems):
            raise ConfigError(f"{ref}: system-level metrics need lines `<id> <value> <system>`")
        inputs = (*inputs, np.array(systems))
    return inputs, keys


_TRIAL_WORDS = {
    "target": 1,
    "tgt": 1,
    "1": 1,
    "true": 1,
    "nontarget": 0,
    "imp": 0,
    "0": 0,
    "false": 0,
}


def load_trials(trials: Path, scores: Path):
    """(scores, labels) paired on (enroll, test)."""
    labels: dict[tuple[str, str], int] = {}
    label_lines: dict[tuple[str, str], int] = {}
    for number, line in _lines(trials):
        fields = line.split()
        if len(fields) != 3:
            raise ConfigError(f"{trials}:{number}: expected 3 fields, got {len(fields)}")
        if fields[0].lower() in ("0", "1"):  # VoxCeleb: label enroll test
            label, pair = int(fields[0]), (fields[1], fields[2])
        elif fields[2].lower() in _TRIAL_WORDS:
            label, pair = _TRIAL_WORDS[fields[2].lower()], (fields[0], fields[1])
        else:
            raise ConfigError(
                f"{trials}:{number}: need `<enroll> <test> target|nontarget` "
                "or `1|0 <enroll> <test>`"
            )
        if pair in labels:
            first, line_of_first = labels[pair], label_lines[pair]
            kind = "with the other label" if first != label else "again"
            raise ConfigError(
                f"{trials}:{number}: trial {' '.join(pair)!r} is listed {kind} "
                f"(first on line {line_of_first}); keep one line per trial"
            )
        labels[pair], label_lines[pair] = label, number
    values: dict[tuple[str, str], float] = {}
    score_lines: dict[tuple[str, str], int] = {}
    for number, line in _lines(scores):
        fields = line.split()
        if len(fields) != 3:
            raise ConfigError(f"{scores}:{number}: expected `<enroll> <test> <score>`")
        pair = (fields[0], fields[1])
        if pair in values:
            raise ConfigError(
                f"{scores}:{number}: trial {' '.join(pair)!r} is scored twice "
                f"(first on line {score_lines[pair]}); keep one score per trial"
            )
        values[pair] = _number(fields[2], scores, f"{fields[0]} {fields[1]}")
        score_lines[pair] = number
    keys = pair_keys(labels, values, trials, scores)
    return (np.array([values[k] for k in keys]), np.array([labels[k] for k in keys])), [
        " ".join(k) for k in keys
    ]


def _score_matrix(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ConfigError(f"{path}: need a header `id,<class1>,...` and one row per item")
    classes = [c.strip() for c in rows[0][1:]]
    out, first_line = {}, {}
    for number, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(classes) + 1:
            raise ConfigError(f"{path}:{number}: {len(row) - 1} scores, header has {len(classes)}")
        key = row[0].strip()
        if key in out:
            raise ConfigError(
                f"{path}:{number}: id {key!r} appears twice (first on line {first_line[key]}); "
                "keep one row per item"
            )
        out[key], first_line[key] = np.array([_number(v, path, key) for v in row[1:]]), number
    return classes, out


def load_tagging(ref: Path, hyp: Path):
    classes, scores = _score_matrix(hyp)
    refs = read_keyed(ref)
    keys = pair_keys(refs, scores, ref, hyp)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.zeros((len(keys), len(classes)))
    for row, key in enumerate(keys):
        for label in filter(None, (x.strip() for x in refs[key].split(","))):
            if label not in index:
                raise ConfigError(f"{ref}: label {label!r} of {key!r} is not a column of {hyp}")
            truth[row, index[label]] = 1
    return (truth, np.stack([scores[k] for k in keys])), keys


def load_lid(ref: Path, hyp: Path):
    languages, scores = _score_matrix(hyp)
    refs = read_keyed(ref)
    keys = pair_keys(refs, scores, ref, hyp)
    index = {c: i for i, c in enumerate(languages)}
    unknown = sorted({refs[k] for k in keys} - set(index))
    if unknown:
        raise ConfigError(f"{ref}: languages {unknown[:3]} are not columns of {hyp}")
    labels = np.array([index[refs[k]] for k in keys])
    return (np.stack([scores[k] for k in keys]), labels), keys


def _read_events(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    files: dict[str, list[tuple[float, float, str]]] = {}
    for number, line in _lines(path):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) == 1:
            files.setdefault(fields[0], [])
            continue
        if len(fields) != 4:
            raise ConfigError(f"{path}:{number}: need `<file> <onset> <offset> <label>`")
        name, onset, offset, label = fields
        files.setdefault(name, []).append(
            (_number(onset, path, name), _number(offset, path, name), label)
        )
    return files


def load_events(ref: Path, hyp: Path):
    refs, hyps = _read_events(ref), _read_events(hyp)
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise ConfigError(
            f"{hyp}: files {extra[:3]} are not in {ref}; list every file in the reference"
        )
    keys = list(refs)
    return ([refs[k] for k in keys], [hyps.get(k, []) for k in keys]), keys


def load_sed_scores(ref: Path, hyp: Path):
    """PSDS inputs: ``ref`` an event list as for ``events`` (``<file> <onset> <offset>
    <label>``; a line holding only ``<file>`` lists a file without events), ``hyp`` a
    folder of ``<file>.tsv`` frame-score tables in sed_scores_eval's format (header
    ``onset offset CLASS...``, one row per frame); a file's duration is its last frame
    offset. Returns the per-file inputs (what a bootstrap resamples) and the class list
    as a keyword. A table the reference does not list is an error, not dropped: its
    audio and false alarms belong in the eFPR."""
    refs = _read_events(ref)
    tables = _files(hyp, (".tsv",))
    missing = sorted(set(refs) - set(tables))
    if missing:
        raise ConfigError(f"{hyp}: no score table for {missing[:3]}; write <file>.tsv per file")
    extra = sorted(set(tables) - set(refs))
    if extra:
        raise ConfigError(
            f"{hyp}: score tables {extra[:3]} are not in {ref}; list every file in the "
            "reference (a line with only the file name for a file without events)"
        )
    keys = list(refs)
    scores, times, classes = [], [], None
    for key in keys:
        rows = [line.split("\t") for _, line in _lines(tables[key])]
        header, body = rows[0], rows[1:]
        if header[:2] != ["onset", "offset"] or not body:
            raise ConfigError(f"{tables[key]}: need a header `onset offset CLASS...` and rows")
        if classes is None:
            classes = header[2:]
        elif header[2:] != classes:
            raise ConfigError(f"{tables[key]}: classes {header[2:]} differ from {classes}")
        values = np.array([[_number(v, tables[key], key) for v in row] for row in body])
        scores.append(values[:, 2:])
        times.append(np.concatenate([values[:, 0], values[-1:, 1]]))
    durations = [float(t[-1]) for t in times]
    return ([refs[k] for k in keys], scores, times, durations), {"classes": classes}, keys


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a directory (audio metrics compare two folders of files)")
    found = {
        str(p.relative_to(folder).with_suffix("")): p
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in suffixes
    }
    if not found:
        raise ConfigError(f"{folder}: no {'/'.join(suffixes)} files")
    return found


def load_audio_pairs(ref: Path, hyp: Path, extra: Path | None = None):
    """Paired (reference, hypothesis[, extra]) signals, their ids and the common sample rate."""
    from speechbench.audio import read_audio

    folders = [ref, hyp] + ([extra] if extra is not None else [])
    listings = [_files(f, AUDIO_SUFFIXES) for f in folders]
    keys = pair_keys(listings[0], listings[1], ref, hyp)
    if extra is not None:
        pair_keys(listings[0], listings[2], ref, extra)
    signals: list[list[np.ndarray]] = [[] for _ in folders]
    rate = None
    for key in keys:
        for slot, listing in enumerate(listings):
            wav, file_rate = read_audio(listing[key])
            if rate is None:
                rate = file_rate
            elif file_rate != rate:
                raise ConfigError(
                    f"{listing[key]}: sample rate {file_rate} Hz, other files {rate} Hz; "
                    "resample so all files share one rate"
                )
            signals[slot].append(wav.astype(np.float64))
    return signals, keys, int(rate)


def load_embeddings(ref: Path, hyp: Path):
    listings = [_files(ref, (".npy",)), _files(hyp, (".npy",))]
    keys = pair_keys(listings[0], listings[1], ref, hyp)
    matrices = []
    for listing in listings:
        rows = []
        for key in keys:
            try:
                vector = np.load(listing[key], allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise ConfigError(
                    f"{listing[key]}: not a readable .npy array ({exc}); "
                    "save it with numpy.save (no pickled objects)"
                ) from None
            if not isinstance(vector, np.ndarray):
                raise ConfigError(f"{listing[key]}: expected a .npy array, not an .npz archive")
            if not np.issubdtype(vector.dtype, np.number) or not np.isfinite(vector).all():
                raise ConfigError(f"{listing[key]}: embedding must be finite numbers")
            if vector.ndim != 1:
                raise ConfigError(
                    f"{listing[key]}: expected one embedding vector, shape {vector.shape}"
                )
            rows.append(vector)
        if len({r.size for r in rows}) != 1:
            raise ConfigError(f"embeddings in {listing[keys[0]].parent} differ in dimension")
        matrices.append(np.stack(rows))
    return (matrices[0], matrices[1]), keys
