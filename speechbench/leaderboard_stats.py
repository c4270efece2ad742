"""Leaderboard statistics: intervals, significance against the best, an overall score.

Reads runs only through ``speechbench.leaderboard`` (``results_frame``: the runs the
table counts; ``applicable``, ``changed_options``, ``metric_facts``, ``effective_seed``:
what each run recorded) and the run folders the runs point to. Definitions
(docs/leaderboard.md has the long form):

- **Cell**: the mean over seeds with a 95% Student-t interval
  (mean ± t(0.975, n-1) · s / √n), or for a single run the percentile bootstrap
  interval over test items that the run stored (``<metric>_ci_low/_ci_high``); n shown.
- **Tied with the best**: a paired bootstrap over test items (``metrics/bootstrap.py``,
  Koehn 2004) between the column's best system and each other one, on their first
  common seed where both kept per-item data; p ≥ 0.05 means not significantly worse,
  i.e. tied. Per-item data come
  from each run's ``predictions.jsonl`` (trials for SV, hypotheses for ASR, scores for
  LID, class posteriors for ASC and TAG, predicted and true scores for MOS, per-mixture
  SI-SDRi for TSE) with references from the corpus manifest; without them (or for a
  metric the stored items cannot recompute, e.g. SED's error rate) the cell says
  "no per-item data" rather than guessing.
- **Overall (SUPERB style)**: per column 1000 · (x' − fbank') / (ref' − fbank') with
  x' = 100 − 100·x for error metrics (fractions here) and x' = x otherwise, fbank and
  ref from ``leaderboards/reference_points.json`` (versioned, with provenance);
  averaged within each task and then across tasks. A system missing any reference
  column has no overall score. Next to it, the mean rank over the same columns.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechbench import leaderboard as lb
from speechbench import paths, registry
from speechbench.errors import SpeechbenchError

CONFIDENCE = 0.95
ALPHA = 0.05
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "leaderboards" / "reference_points.json"
NO_ITEMS = "no per-item data"
COMMITTED_RUNS = REFERENCE_FILE.parent / "runs"  # the committed leaderboard's run folders
COMMITTED_ITEMS = "predictions.jsonl.gz"
# The per-item inputs of runs whose predictions need the corpus manifest to be scored
# (references, class labels, languages): resolved once on a machine with the corpus, so
# a clone without the corpora still runs the paired tests of the board it shows.
COMMITTED_RESOLVED = "items.json.gz"


@dataclass
class Column:
    key: str  # "asr/mini-en cer"
    task: str  # "asr/mini-en"
    downstream: str
    corpus: str
    metric: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


@dataclass
class Cell:
    system: str
    column: Column
    runs: list[dict[str, Any]]  # one per seed, newest run of each seed
    mean: float = math.nan
    low: float | None = None
    high: float | None = None
    interval: str = ""  # "t" (over seeds) | "bootstrap" (one run's test items) | ""
    is_best: bool = False
    tied: bool | None = None  # None: not tested (no per-item data, or the best itself)
    p_value: float | None = None
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int]:
        return [lb.effective_seed(r) for r in self.runs]

    def command(self) -> str:
        """The CLI call that reproduces this cell (one seed per run)."""
        row = self.runs[0]
        options = [f"{k}.{o}={_plain(v)}" for k, o, v in lb.changed_options(row)]
        seeds = ",".join(str(r["seed"]) for r in self.runs)
        searched = any(v == "grid" for _, _, v in lb.changed_options(row))  # only sweep can
        verb = "sweep" if self.n > 1 or searched else "run"
        return " ".join(
            [
                f"speechbench {verb}",
                f"upstream={row['upstream']}",
                f"downstream={row['downstream']}",
                f"corpus={row['corpus']}",
                *options,
                f"seed={seeds}",
            ]
        )


def _plain(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class Board:
    systems: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]
    status: dict[tuple[str, str], str]  # "ok" | "n/a" (cannot run) | "not run"
    upstream_of: dict[str, str]
    overall: dict[str, float | None] = field(default_factory=dict)
    overall_rank: dict[str, float | None] = field(default_factory=dict)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- cells


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t interval; needs at least two values."""
    from scipy import stats

    array = np.asarray(values, float)
    mean = float(array.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, len(array) - 1) * array.std(ddof=1))
    half /= math.sqrt(len(array))
    return mean, mean - half, mean + half


def _metric_direction(frame: Any, metric: str) -> bool:
    """The direction the runs recorded for this key (the registry's when none did)."""
    known = {bool(v) for v in frame["higher_is_better"] if v is not None and v == v}
    if len(known) == 1:
        return known.pop()
    return _spec(frame.iloc[-1]["row"], metric).higher_is_better


def _spec(row: dict[str, Any], key: str) -> Any:
    """The registered metric a reported key is an instance of (``cavg_1s`` -> ``cavg``)."""
    from speechbench.metrics.base import get_metric

    base = lb.metric_facts(row, key).get("base") or key
    return get_metric(base)


def build_board(
    rows: list[dict[str, Any]],
    references: dict[str, Any] | None = None,
    significance: bool = True,
    n_resamples: int = 1000,
) -> Board:
    """Every cell's statistics, from the runs the leaderboard itself counts
    (``leaderboard.results_frame``: newest run per system, task and seed)."""
    frame = lb.results_frame(rows)
    if frame.empty:
        raise SpeechbenchError("no finished runs in the results store; run `speechbench run` first")
    columns: dict[str, Column] = {}
    cells: dict[tuple[str, str], Cell] = {}
    example: dict[str, dict[str, Any]] = {}  # a run of each system / of each column
    task_example: dict[str, dict[str, Any]] = {}
    for (task, metric), group in frame.groupby(["task", "metric"], sort=True):
        first = group.iloc[-1]["row"]
        key = f"{task} {metric}"
        higher = _metric_direction(group, metric)
        columns[key] = Column(key, task, first["downstream"], first["corpus"], metric, higher)
        task_example[key] = first
        for system, runs_frame in group.groupby("system", sort=True):
            runs_frame = runs_frame.sort_values("seed", kind="stable")
            runs = list(runs_frame["row"])
            example[system] = runs[-1]
            cell = Cell(system, columns[key], runs)
            values = [float(v) for v in runs_frame["value"]]
            if len(values) > 1:
                cell.mean, cell.low, cell.high = t_interval(values)
                cell.interval = "t"
            else:
                cell.mean = values[0]
                low = runs[0]["metrics"].get(f"{metric}_ci_low")
                high = runs[0]["metrics"].get(f"{metric}_ci_high")
                if low is not None and high is not None:
                    cell.low, cell.high, cell.interval = float(low), float(high), "bootstrap"
            cells[(system, key)] = cell
    systems = sorted(example)
    upstream_of = {s: example[s]["upstream"] for s in systems}
    ordered = [columns[k] for k in sorted(columns)]
    status = {}
    for system in systems:
        for column in ordered:
            if (system, column.key) in cells:
                status[(system, column.key)] = "ok"
            else:
                fits = lb.applicable(example[system], task_example[column.key])
                status[(system, column.key)] = "not run" if fits else "n/a"
    board = Board(systems, ordered, cells, status, upstream_of)
    for column in ordered:
        _mark_best(board, column, significance, n_resamples)
    board.references = references if references is not None else load_references()
    board.overall, board.overall_rank = overall_scores(board)
    board.extras = upstream_extras(rows)
    return board


def _mark_best(board: Board, column: Column, significance: bool, n_resamples: int) -> None:
    here = [c for (s, k), c in board.cells.items() if k == column.key and math.isfinite(c.mean)]
    if not here:
        return
    sign = 1 if column.higher_is_better else -1
    best = max(here, key=lambda c: sign * c.mean)
    best.is_best = True
    best.note = "best"
    if len(here) == 1 or not significance:
        return
    best_items = {lb.effective_seed(r): per_item(r, column.metric) for r in best.runs}
    for cell in here:
        if cell is best:
            continue
        common = sorted(set(best.seeds) & set(cell.seeds))
        if not common:
            cell.note = "no common seed with the best"
            continue
        # the first common seed on which both runs kept their items (older runs of a
        # cell may predate predictions.jsonl while its later seeds have them)
        seed, mine, theirs = common[0], None, None
        for candidate in common:
            theirs = best_items[candidate]
            if theirs is None:
                continue
            run = next(r for r in cell.runs if lb.effective_seed(r) == candidate)
            mine = per_item(run, column.metric)
            if mine is not None:
                seed = candidate
                break
        if mine is None or theirs is None:
            cell.note = NO_ITEMS
            continue
        try:
            spec = _spec(best.runs[0], column.metric)
            result = paired_test(spec, theirs, mine, n_resamples)
        except SpeechbenchError as exc:
            cell.note = f"no test: {exc}"
            continue
        cell.p_value = result.p_value
        cell.tied = not (result.a_is_better and result.p_value < ALPHA)
        verdict = "tied with best" if cell.tied else "worse than best"
        cell.note = f"{verdict} (paired bootstrap p={result.p_value:.3f}, seed {seed})"


# ---------------------------------------------------------------- per-item data


@dataclass
class Items:
    """A run's test items: key -> the metric's positional inputs for that item."""

    # "trials" | "scores": (score, label); "text" | "pairs": (reference, prediction);
    # "values": (the metric's own per-item value,)
    kind: str
    data: dict[Any, tuple[Any, ...]]
    extra: dict[str, Any] = field(default_factory=dict)


def predictions_path(row: dict[str, Any]) -> Path | None:
    """The run's own predictions.jsonl, else the gzipped copy the committed leaderboard
    keeps (``site.write_site``), so a fresh clone still tests the runs it shows."""
    candidates = []
    if row.get("run_dir"):
        candidates.append(Path(row["run_dir"]) / "predictions.jsonl")
    candidates.append(paths.results_dir() / "runs" / row["run_id"] / "predictions.jsonl")
    candidates.append(_committed(row, COMMITTED_ITEMS))
    return next((p for p in candidates if p.is_file()), None)


def _committed(row: dict[str, Any], name: str) -> Path:
    """A file the committed leaderboard keeps for this run (``site.write_site``)."""
    return COMMITTED_RUNS / row["run_id"] / name


def _read_lines(path: Path) -> list[dict[str, Any]]:
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def run_folder(row: dict[str, Any]) -> Path | None:
    """The run's own folder when this machine has it."""
    folder = Path(row["run_dir"]) if row.get("run_dir") else None
    if folder is not None and folder.is_dir():
        return folder
    folder = paths.results_dir() / "runs" / row["run_id"]
    return folder if folder.is_dir() else None


def _records(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        corpus = registry.get("corpora", row["corpus"])()
        if not corpus.is_prepared():
            return None
        return {r.id: r for r in corpus.manifest()}
    except SpeechbenchError:
        return None


def per_item(row: dict[str, Any], metric: str | None = None) -> Items | None:
    """The per-item inputs of ``metric`` (default: the run's primary metric), or None
    when they are not here or the stored items cannot recompute that metric."""
    path = predictions_path(row)
    if path is None:
        return None
    lines = _read_lines(path)
    if not lines:
        return None
    metric = metric or row.get("primary_metric") or ""
    if "trials" in lines[0]:  # SV / GMM-UBM: every trial with its label and score
        data = {
            (enroll, line["id"]): (float(score), 1 if label == "target" else 0)
            for line in lines
            for enroll, label, score in line["trials"]
        }
        return Items("trials", data)
    if "si_sdri" in lines[0]:  # TSE: the utterance-level metric itself, per mixture
        if metric != "si_sdri":
            return None
        return Items("values", {line["id"]: (float(line["si_sdri"]),) for line in lines})
    if "truth" in lines[0]:  # MOS: predicted and true score per target (srcc_ovrl -> ovrl)
        target = metric.rsplit("_", 1)[-1]
        if target not in lines[0]["prediction"]:
            return None
        data = {
            line["id"]: (float(line["truth"][target]), float(line["prediction"][target]))
            for line in lines
            if line["truth"].get(target) is not None
        }
        return Items("pairs", data)
    records = _records(row)
    if records is None:  # no corpus here: the copy resolved where it was
        resolved = _committed(row, COMMITTED_RESOLVED)
        return load_resolved(resolved) if resolved.is_file() else None
    return _items_from_records(row, lines, records)


def _items_from_records(
    row: dict[str, Any], lines: list[dict[str, Any]], records: dict[str, Any]
) -> Items | None:
    """ASR, ASC/TAG and LID items: predictions joined with the corpus manifest."""
    if any(line["id"] not in records for line in lines):
        return None
    prediction = lines[0].get("prediction")
    if isinstance(prediction, str):  # ASR: references as the run's downstream made them
        downstream = _downstream_of(row, list(records.values()))
        if downstream is None:
            return None
        data = {
            line["id"]: (downstream.reference(records[line["id"]]), line["prediction"])
            for line in lines
        }
        return Items("text", data)
    if isinstance(prediction, list) and row.get("downstream") in ("asc", "tag"):
        return _scene_items(row, lines, records)
    if isinstance(prediction, dict):  # LID: detection scores per language, full condition
        from speechbench.downstreams.lid import FULL, condition_of

        languages = list(prediction)
        index = {lang: i for i, lang in enumerate(languages)}
        chosen = [x for x in lines if condition_of(records[x["id"]]) == FULL] or lines
        data = {
            x["id"]: (
                [x["prediction"][lang] for lang in languages],
                index.get(records[x["id"]].language, -1),
            )
            for x in chosen
        }
        if any(label < 0 for _, label in data.values()):
            return None
        return Items("scores", data)
    return None


def resolved_items(row: dict[str, Any]) -> Items | None:
    """The run's per-item inputs when they need the corpus manifest (else None: trials,
    per-mixture SI-SDRi and MOS pairs are self-contained in predictions.jsonl)."""
    path = predictions_path(row)
    lines = _read_lines(path) if path is not None else []
    if not lines or any(key in lines[0] for key in ("trials", "si_sdri", "truth")):
        return None
    records = _records(row)
    return _items_from_records(row, lines, records) if records is not None else None


def dump_resolved(items: Items) -> bytes:
    """Gzipped JSON of ``items`` (arrays as lists; keys are item ids)."""

    def plain(value: Any) -> Any:
        return value.tolist() if isinstance(value, np.ndarray) else value

    body = {
        "kind": items.kind,
        "items": [[key, [plain(v) for v in values]] for key, values in items.data.items()],
    }
    return gzip.compress(json.dumps(body, sort_keys=True).encode(), mtime=0)


def load_resolved(path: Path) -> Items | None:
    try:
        body = json.loads(gzip.decompress(path.read_bytes()))
        return Items(body["kind"], {key: tuple(values) for key, values in body["items"]})
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged copy: the cell is shown untested, never wrongly tested


def _scene_items(row: dict[str, Any], lines: list[dict], records: dict[str, Any]) -> Items | None:
    """ASC: (true class, arg-max class) per clip; TAG: (multi-hot truth, sigmoid scores),
    the truth encoded by the run's own downstream (its class list comes from train)."""
    from speechbench.downstreams.scenes import class_set

    downstream = registry.get("downstreams", row["downstream"])()
    train = [r for r in records.values() if r.split == "train"]
    downstream.load_state_dict({"classes": class_set(train, downstream.task)})
    data = {}
    for line in lines:
        truth = downstream.target(records[line["id"]])
        if row["downstream"] == "asc":
            data[line["id"]] = (int(truth), int(np.argmax(line["prediction"])))
        else:
            data[line["id"]] = (np.asarray(truth, float), np.asarray(line["prediction"], float))
    return Items("pairs", data)


def _downstream_of(row: dict[str, Any], records: list[Any]) -> Any:
    try:
        options = dict((row.get("config") or {}).get("downstream") or {})
        options.pop("name", None)
        cls = registry.get("downstreams", row["downstream"])
        downstream = cls(cls.Options(**options))
        downstream.setup([r for r in records if r.split == "train"])
        return downstream
    except (SpeechbenchError, TypeError):
        return None


def paired_test(spec: Any, best: Items, other: Items, n_resamples: int = 1000):
    """Paired bootstrap (metrics.bootstrap) of ``best`` against ``other`` on shared items,
    ``spec`` being the registered metric (its function recomputed on every resample)."""
    from speechbench.metrics.bootstrap import paired_bootstrap_test, paired_mean_test

    keys = sorted(set(best.data) & set(other.data), key=str)
    if len(keys) < 2:
        raise SpeechbenchError("fewer than 2 test items in common")
    if best.kind == "values":
        return paired_mean_test(
            [best.data[k][0] for k in keys],
            [other.data[k][0] for k in keys],
            higher_is_better=spec.higher_is_better,
            name=spec.name,
            n_resamples=n_resamples,
            seed=0,
        )
    if best.kind in ("text", "pairs"):  # metric(references, predictions)
        as_input = list if best.kind == "text" else np.asarray  # hypotheses stay strings
        refs = as_input([best.data[k][0] for k in keys])
        inputs_a = (refs, as_input([best.data[k][1] for k in keys]))
        inputs_b = (refs, as_input([other.data[k][1] for k in keys]))
    else:  # metric(scores, labels)
        labels = np.array([best.data[k][1] for k in keys])
        inputs_a = (np.array([best.data[k][0] for k in keys], float), labels)
        inputs_b = (np.array([other.data[k][0] for k in keys], float), labels)
    return paired_bootstrap_test(spec, inputs_a, inputs_b, n_resamples=n_resamples, seed=0)


# ---------------------------------------------------------------- overall scores


def load_references(path: Path = REFERENCE_FILE) -> dict[str, Any]:
    if not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text())


def _transformed(value: float, higher_is_better: bool) -> float:
    """SUPERB's convention: error metrics (fractions here) enter as 100 - percent."""
    return value if higher_is_better else 100.0 - 100.0 * value


def column_score(value: float, point: dict[str, Any]) -> float:
    higher = bool(point["higher_is_better"])
    x, base, ref = (_transformed(v, higher) for v in (value, point["fbank"], point["reference"]))
    return 1000.0 * (x - base) / (ref - base)


def overall_scores(board: Board) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """(SUPERB-style score, mean rank) per system; None when a reference column is missing."""
    points = (board.references or {}).get("columns", {})
    usable = {k: p for k, p in points.items() if p["reference"] != p["fbank"]}
    ranks = _ranks(board, list(usable))
    scores: dict[str, float | None] = {}
    mean_ranks: dict[str, float | None] = {}
    for system in board.systems:
        cells = {k: board.cells.get((system, k)) for k in usable}
        if not usable or any(c is None or not math.isfinite(c.mean) for c in cells.values()):
            scores[system] = mean_ranks[system] = None
            continue
        by_task: dict[str, list[float]] = {}
        for key, point in usable.items():
            by_task.setdefault(point["task"], []).append(column_score(cells[key].mean, point))
        scores[system] = float(np.mean([np.mean(v) for v in by_task.values()]))
        mean_ranks[system] = float(np.mean([ranks[(system, k)] for k in usable]))
    return scores, mean_ranks


def _ranks(board: Board, keys: list[str]) -> dict[tuple[str, str], float]:
    """Rank of each system within each column (1 = best, ties share the mean rank)."""
    from scipy.stats import rankdata

    out = {}
    for key in keys:
        column = next((c for c in board.columns if c.key == key), None)
        here = [(s, c.mean) for (s, k), c in board.cells.items() if k == key]
        if column is None or not here:
            continue
        sign = -1 if column.higher_is_better else 1
        ranked = rankdata([sign * v for _, v in here])
        out.update({(s, key): float(r) for (s, _), r in zip(here, ranked, strict=True)})
    return out


def reference_points(rows: list[dict[str, Any]], columns: dict[str, str]) -> dict[str, Any]:
    """Reference points from runs: fbank's mean and the best system's mean per column.

    ``columns`` maps a column key ("asr/mini-en cer") to its task name ("asr")."""
    board = build_board(rows, references={}, significance=False)
    out = {}
    for key, task in columns.items():
        column = next(c for c in board.columns if c.key == key)
        here = {s: c for (s, k), c in board.cells.items() if k == key}
        sign = 1 if column.higher_is_better else -1
        best = max(here.values(), key=lambda c: sign * c.mean)
        fbank = here["fbank"]
        out[key] = {
            "task": task,
            "metric": column.metric,
            "higher_is_better": column.higher_is_better,
            "fbank": round(fbank.mean, 6),
            "fbank_runs": [r["run_id"] for r in fbank.runs],
            "reference": round(best.mean, 6),
            "reference_system": best.system,
            "reference_runs": [r["run_id"] for r in best.runs],
        }
    return out


# ---------------------------------------------------------------- extra columns


def upstream_extras(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per upstream, from the store: parameters, extraction speed (× real time: seconds of
    audio per second of extraction, runs that extracted rather than read the cache) and
    peak memory. None where the store does not have it.

    Peak memory is the largest ``extract_peak_mb`` (the process peak after corpus loading
    and extraction, before the head exists) over runs that extracted. Runs recorded
    before that timing existed only have the whole run's peak, which the head dominates
    (a TTS head takes 15 GB); for an upstream with no extraction record the column shows
    the smallest whole-run peak, an upper bound, and ``peak_source`` says so."""
    out: dict[str, dict[str, Any]] = {}
    durations: dict[str, float | None] = {}
    run_peaks: dict[str, list[float]] = {}
    for row in rows:
        if row.get("status") != "finished":
            continue
        entry = out.setdefault(
            row["upstream"], {"params": None, "xrt": None, "peak_mb": None, "peak_source": None}
        )
        timings = row.get("timings") or {}
        if row.get("peak_memory_mb"):
            run_peaks.setdefault(row["upstream"], []).append(float(row["peak_memory_mb"]))
        extracted = not timings.get("cache_hits")
        if extracted and timings.get("extract_peak_mb"):
            entry["peak_mb"] = max(entry["peak_mb"] or 0.0, float(timings["extract_peak_mb"]))
            entry["peak_source"] = "extraction"
        params = row.get("upstream_params") or timings.get("upstream_params")
        if params is not None:
            entry["params"] = float(params)
        audio_s = timings.get("audio_s")
        if audio_s is None and row["corpus"] not in durations:
            durations[row["corpus"]] = _corpus_seconds(row["corpus"])
        audio_s = audio_s if audio_s is not None else durations.get(row["corpus"])
        extract_s = timings.get("extract_s") or 0.0
        if audio_s and extract_s > 0 and extracted:
            entry["xrt"] = max(entry["xrt"] or 0.0, float(audio_s) / float(extract_s))
    for upstream, entry in out.items():
        if entry["peak_source"] is None and run_peaks.get(upstream):
            entry["peak_mb"] = min(run_peaks[upstream])
            entry["peak_source"] = "smallest whole run (upper bound)"
    return out


def _corpus_seconds(name: str) -> float | None:
    try:
        corpus = registry.get("corpora", name)()
    except SpeechbenchError:
        return None
    stats = corpus.root / "stats.json"
    if not corpus.is_prepared() or not stats.is_file():
        return None
    hours = json.loads(stats.read_text()).get("hours")
    return float(hours) * 3600.0 if hours else None


def layer_weights(row: dict[str, Any]) -> list[float] | None:
    """The learnt layer weights from the run's training.json, else from the committed
    leaderboard's copy of its config (``site.write_site`` stores them there)."""
    folder = run_folder(row)
    training = folder / "training.json" if folder else None
    if training is not None and training.is_file():
        weights = json.loads(training.read_text()).get("layer_weights")
    else:
        committed = _committed(row, "config.json")
        weights = (
            json.loads(committed.read_text()).get("layer_weights") if committed.is_file() else None
        )
    return [float(w) for w in weights] if weights else None
