"""The leaderboard as files people read: markdown, CSV and one static HTML page.

``write_site(rows, out_dir)`` writes ``leaderboard.md``, ``leaderboard.csv`` and
``index.html`` (also as ``leaderboard.html``) from ``leaderboard_stats.build_board``,
plus ``runs/<run_id>/config.json`` for every run shown, which the page links to.

The page is self-contained (inline CSS, inline SVG, a few lines of inline JS, no
network access): sortable columns (click a header, or open ``index.html#sort=KEY``
/ ``#sort=KEY:desc``), metric direction arrows, "n/a" (cannot run) versus "not run"
cells, a tooltip on every cell with its command, seeds, interval and significance,
a task × system heatmap and the layer-weight profile per upstream and task.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

from speechbench import atomic
from speechbench.leaderboard_stats import (
    COMMITTED_ITEMS,
    COMMITTED_RESOLVED,
    Board,
    Cell,
    build_board,
    dump_resolved,
    layer_weights,
    predictions_path,
    resolved_items,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MAX_ITEMS_BYTES = 256_000  # per run; SV trial lists are the largest


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return (
        f"{value:.{digits}f}".replace("-0.0", "0.0")
        if value > -0.5 * 10**-digits
        else f"{value:.{digits}f}"
    )


def cell_text(cell: Cell) -> str:
    """``0.458 ± 0.022 (n=3)``; a single run's bootstrap interval as ``[low, high]``."""
    text = _fmt(cell.mean)
    if cell.interval == "t" and cell.high is not None:
        text += f" ± {_fmt(cell.high - cell.mean)}"
    elif cell.interval == "bootstrap":
        text += f" [{_fmt(cell.low)}, {_fmt(cell.high)}]"
    return f"{text} (n={cell.n})"


def cell_tooltip(cell: Cell) -> str:
    kind = {"t": "95% t-interval over seeds", "bootstrap": "95% bootstrap CI over test items"}
    lines = [
        cell.command(),
        f"seeds: {', '.join(str(s) for s in cell.seeds)}",
        f"{cell.column.metric} = {_fmt(cell.mean, 4)}",
    ]
    if cell.low is not None:
        lines.append(f"{kind[cell.interval]}: [{_fmt(cell.low, 4)}, {_fmt(cell.high, 4)}]")
    else:
        lines.append("no interval stored (one run without a bootstrap CI)")
    if cell.note:
        lines.append(cell.note)
    return "\n".join(lines)


def _mark(cell: Cell) -> str:
    return "best" if cell.is_best else ("tied" if cell.tied else "")


def table_rows(board: Board) -> list[dict[str, str]]:
    """One dict per system: display strings of every column (markdown / CSV)."""
    out = []
    for system in board.systems:
        extras = board.extras.get(board.upstream_of[system], {})
        row = {
            "system": system,
            "overall": _fmt(board.overall.get(system), 1),
            "mean rank": _fmt(board.overall_rank.get(system), 2),
        }
        for column in board.columns:
            cell = board.cells.get((system, column.key))
            if cell is None:
                row[f"{column.key} {column.arrow}"] = board.status[(system, column.key)]
                continue
            text = cell_text(cell)
            mark = _mark(cell)
            row[f"{column.key} {column.arrow}"] = (
                f"**{text}**" if mark == "best" else (f"{text} ≈" if mark == "tied" else text)
            )
        row["params"] = _count(extras.get("params"))
        row["extract ×RT"] = _fmt(extras.get("xrt"), 0)
        row["peak MB"] = _fmt(extras.get("peak_mb"), 0)
        out.append(row)
    return out


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def render_markdown(board: Board) -> str:
    rows = table_rows(board)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in rows]
    legend = (
        "\nCells: mean ± 95% t-interval half-width over seeds, or [low, high] = one run's 95% "
        "bootstrap CI over test items; n = runs. **bold** = column best, ≈ = not significantly "
        "worse than the best (paired bootstrap over test items, p ≥ 0.05). n/a = cannot run, "
        "not run = could run but no result. overall = SUPERB-style score against "
        f"leaderboards/reference_points.json (version {board.references.get('version', '-')}); "
        "undefined when a task is missing.\n"
    )
    return "\n".join(lines) + "\n" + legend


def render_csv(board: Board) -> str:
    """Numbers, not display strings: one line per (system, column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "system",
            "task",
            "metric",
            "higher_is_better",
            "status",
            "mean",
            "ci_low",
            "ci_high",
            "interval",
            "n",
            "seeds",
            "best",
            "tied_with_best",
            "p_vs_best",
            "overall",
            "mean_rank",
        ]
    )
    for system in board.systems:
        for column in board.columns:
            cell = board.cells.get((system, column.key))
            status = board.status[(system, column.key)]
            base = [system, column.task, column.metric, column.higher_is_better, status]
            scores = [board.overall.get(system), board.overall_rank.get(system)]
            if cell is None:
                writer.writerow([*base, "", "", "", "", 0, "", "", "", "", *scores])
                continue
            writer.writerow(
                [
                    *base,
                    cell.mean,
                    cell.low,
                    cell.high,
                    cell.interval,
                    cell.n,
                    " ".join(str(s) for s in cell.seeds),
                    cell.is_best,
                    "" if cell.tied is None else cell.tied,
                    "" if cell.p_value is None else cell.p_value,
                    *scores,
                ]
            )
    return buffer.getvalue()


# ---------------------------------------------------------------- SVG figures


def _colour(t: float) -> str:
    """0 = worst (light) ... 1 = best (dark blue)."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (int(240 - t * (240 - c0)) for c0 in (33, 102, 172))
    return f"rgb({r},{g},{b})"


def heatmap_svg(board: Board) -> str:
    """Task × system grid; colour = position between the column's worst and best."""
    cw, ch, left, top = 92, 24, 260, 110
    width = left + cw * len(board.columns) + 170  # room for the last rotated label
    height = top + ch * len(board.systems) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="task by system heatmap" font-size="11" font-family="sans-serif">'
    ]
    for j, column in enumerate(board.columns):
        x = left + j * cw + cw / 2
        parts.append(
            f'<text transform="translate({x},{top - 6}) rotate(-35)">'
            f"{html.escape(column.key)} {column.arrow}</text>"
        )
    for i, system in enumerate(board.systems):
        y = top + i * ch
        label = html.escape(system)
        parts.append(f'<text x="{left - 6}" y="{y + ch * 0.65}" text-anchor="end">{label}</text>')
        for j, column in enumerate(board.columns):
            x = left + j * cw
            values = [c.mean for (s, k), c in board.cells.items() if k == column.key]
            cell = board.cells.get((system, column.key))
            if cell is None:
                label = board.status[(system, column.key)]
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f4f4f4"/>'
                    f'<text x="{x + cw / 2}" y="{y + ch * 0.65}" text-anchor="middle" '
                    f'fill="#999">{label}</text>'
                )
                continue
            lo, hi = min(values), max(values)
            t = 1.0 if hi == lo else (cell.mean - lo) / (hi - lo)
            t = t if column.higher_is_better else 1 - t
            ink = "#fff" if t > 0.55 else "#000"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{_colour(t)}">'
                f"<title>{html.escape(cell_tooltip(cell))}</title></rect>"
                f'<text x="{x + cw / 2}" y="{y + ch * 0.65}" text-anchor="middle" fill="{ink}">'
                f"{_fmt(cell.mean)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def layer_profile_svg(weights: list[float], title: str) -> str:
    """Bars of the softmax layer weights a head learned (SUPERB weighted sum)."""
    bw, h, pad = max(6, min(24, 360 // max(len(weights), 1))), 80, 20
    width = pad * 2 + bw * len(weights)
    peak = max(weights) or 1.0
    bars = []
    for i, w in enumerate(weights):
        bh = h * w / peak
        bars.append(
            f'<rect x="{pad + i * bw}" y="{pad + h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" '
            f'fill="#2166ac"><title>layer {i}: {w:.3f}</title></rect>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h + 2 * pad + 10}" '
        f'font-size="10" font-family="sans-serif" role="img" aria-label="{html.escape(title)}">'
        f'<text x="{pad}" y="12">{html.escape(title)}</text>{"".join(bars)}'
        f'<text x="{pad}" y="{h + 2 * pad + 6}">layer 0 … {len(weights) - 1}</text></svg>'
    )


# ---------------------------------------------------------------- the page

# no network: nothing but the page's own inline style and script may load
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 5px;text-align:right;white-space:nowrap}
th{background:#eef;cursor:pointer;position:sticky;top:0;white-space:normal;max-width:9em}
td small a{text-decoration:none;font-size:10px}
th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold;background:#dfe}td.tied{background:#f3fbf3}
td.na{color:#aaa;font-style:italic}td.notrun{color:#c60}
.legend{font-size:12px;color:#555;max-width:60em}
figure{display:inline-block;margin:0 1em 1em 0}
"""

SCRIPT = """
(function(){
  var table=document.getElementById('board');
  function key(td){var v=td.getAttribute('data-v');return v===null||v===''?null:parseFloat(v);}
  function sortBy(col,dir){
    var ths=table.tHead.rows[0].cells,th=null,i,idx=-1;
    for(i=0;i<ths.length;i++){ths[i].classList.remove('sorted-asc','sorted-desc');
      if(ths[i].getAttribute('data-key')===col){th=ths[i];idx=i;}}
    if(idx<0)return;
    if(!dir){dir=th.getAttribute('data-better')==='higher'?'desc':'asc';}
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=key(a.cells[idx]),y=key(b.cells[idx]);
      if(th.getAttribute('data-type')==='text'){x=a.cells[idx].textContent;y=b.cells[idx].textContent;
        return dir==='asc'?x.localeCompare(y):y.localeCompare(x);}
      if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
      return dir==='asc'?x-y:y-x;});
    rows.forEach(function(r){body.appendChild(r);});
    th.classList.add(dir==='asc'?'sorted-asc':'sorted-desc');
    table.setAttribute('data-sorted',col+':'+dir);
  }
  var ths=table.tHead.rows[0].cells;
  for(var i=0;i<ths.length;i++){(function(th){th.addEventListener('click',function(){
    var k=th.getAttribute('data-key'),cur=table.getAttribute('data-sorted')||'';
    var dir=cur===k+':asc'?'desc':(cur===k+':desc'?'asc':null);sortBy(k,dir);});})(ths[i]);}
  function fromHash(){var m=/sort=([^&:]+)(?::(asc|desc))?/.exec(decodeURIComponent(location.hash));
    if(m)sortBy(m[1],m[2]||null);}
  window.addEventListener('hashchange',fromHash);fromHash();
  document.body.setAttribute('data-ready','yes');
})();
"""


def _column_id(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def _td(value: float | None, text: str, css: str = "", title: str = "") -> str:
    v = "" if value is None or not math.isfinite(value) else repr(float(value))
    attrs = f' data-v="{v}"'
    if css:
        attrs += f' class="{css}"'
    if title:
        attrs += f' title="{html.escape(title)}"'
    return f"<td{attrs}>{text}</td>"


def render_html(
    board: Board,
    links: dict[str, str] | None = None,
    samples: dict[str, list[str]] | None = None,
) -> str:
    """The page; ``links`` maps run ids to their config, ``samples`` to audio samples."""
    links, samples = links or {}, samples or {}
    heads = [
        ('<th data-key="system" data-type="text">system</th>'),
        '<th data-key="overall" data-better="higher" title="SUPERB-style score">overall ↑</th>',
        '<th data-key="rank" data-better="lower" title="mean rank over the same columns">'
        "mean rank ↓</th>",
    ]
    for column in board.columns:
        better = "higher" if column.higher_is_better else "lower"
        heads.append(
            f'<th data-key="{_column_id(column.key)}" data-better="{better}" '
            f'title="{html.escape(column.metric)}: {better} is better">'
            f"{html.escape(column.key)} {column.arrow}</th>"
        )
    heads += [
        '<th data-key="params" data-better="lower" title="upstream parameters">params</th>',
        '<th data-key="xrt" data-better="higher" title="seconds of audio extracted per second">'
        "extract ×RT ↑</th>",
        '<th data-key="peak" data-better="lower" title="peak memory of corpus loading and '
        'feature extraction (largest over runs that extracted)">peak MB ↓</th>',
    ]
    body = []
    for system in board.systems:
        extras = board.extras.get(board.upstream_of[system], {})
        score, rank = board.overall.get(system), board.overall_rank.get(system)
        tds = [
            f'<td data-v="{html.escape(system)}">{html.escape(system)}</td>',
            _td(
                score, _fmt(score, 1), title="undefined: a task is missing" if score is None else ""
            ),
            _td(rank, _fmt(rank, 2)),
        ]
        for column in board.columns:
            cell = board.cells.get((system, column.key))
            if cell is None:
                status = board.status[(system, column.key)]
                css = "na" if status == "n/a" else "notrun"
                why = "cannot run: the pairing is incompatible" if css == "na" else "not run yet"
                tds.append(_td(None, status, css, why))
                continue
            text = html.escape(cell_text(cell))
            run_links = "".join(
                f'<a href="{links[r["run_id"]]}" title="config of run {r["run_id"]} '
                f'(seed {r["seed"]})">⚙</a>'
                for r in cell.runs
                if r["run_id"] in links
            )
            run_links += "".join(
                f'<a href="{href}" title="audio sample of run {r["run_id"]}">♪</a>'
                for r in cell.runs
                for href in samples.get(r["run_id"], [])[:1]
            )
            mark = _mark(cell)
            shown = f"{text}{' ≈' if mark == 'tied' else ''} <small>{run_links}</small>"
            tds.append(_td(cell.mean, shown, mark, cell_tooltip(cell)))
        tds += [
            _td(extras.get("params"), _count(extras.get("params"))),
            _td(extras.get("xrt"), _fmt(extras.get("xrt"), 0)),
            _td(
                extras.get("peak_mb"),
                _fmt(extras.get("peak_mb"), 0),
                title=f"from: {extras['peak_source']}" if extras.get("peak_source") else "",
            ),
        ]
        body.append("<tr>" + "".join(tds) + "</tr>")
    refs = board.references
    profiles = _profiles(board)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>speechbench leaderboard</title><style>{STYLE}</style></head>
<body>
<h1>speechbench leaderboard</h1>
<p class="legend">Rows are systems (upstream + changed options), columns are task metrics
(↑ higher is better, ↓ lower is better). A cell is the mean ± the 95% t-interval half-width
over seeds, or a single run's 95% bootstrap interval [low, high] over test items; n = runs.
Bold green = column best; light green with ≈ = not significantly worse than the best
(paired bootstrap over test items, p ≥ 0.05). <i>n/a</i> = the pairing cannot run;
<span style="color:#c60">not run</span> = it could, but has no result. Hover a cell for its
command, seeds, interval and significance; ⚙ links to each run's config, ♪ to an audio
sample of generation and extraction tasks. Click a header to
sort (or open <code>#sort=overall</code>). Overall = SUPERB-style score, 1000 × (x − fbank) /
(reference − fbank) with error metrics as 100 − x, averaged within then across tasks
(reference points: leaderboards/reference_points.json, version {refs.get("version", "-")});
undefined when a task is missing. Mean rank uses the same columns.</p>
<table id="board"><thead><tr>{"".join(heads)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
<h2>Task × system</h2>
<p class="legend">Colour: position between the column's worst (light) and best (dark).</p>
{heatmap_svg(board)}
<h2>Layer-weight profiles</h2>
<p class="legend">Softmax weights of the head's weighted layer sum (SUPERB), per upstream and
task, from each run's training.json (first seed).</p>
{profiles}
<script>{SCRIPT}</script>
</body></html>
"""


def _profiles(board: Board) -> str:
    figures, missing, single = [], 0, 0
    for (system, _key), cell in sorted(board.cells.items()):
        if system != board.upstream_of[system]:
            continue  # one profile per upstream (its default system) and task
        weights = layer_weights(cell.runs[0])
        if weights is None:
            missing += 1
            continue
        if len(weights) < 2:
            single += 1
            continue
        title = f"{system} · {cell.column.task}"
        figures.append(f"<figure>{layer_profile_svg(weights, title)}</figure>")
    notes = []
    if missing:
        notes.append(
            f"{missing} cells have no layer weights here (their run folders are not on this "
            "machine, e.g. runs read from runs.jsonl)"
        )
    if single:
        notes.append(f"{single} cells read a single-layer upstream (nothing to weigh)")
    note = f'<p class="legend">{"; ".join(notes)}.</p>' if notes else ""
    return "".join(figures) + note if figures or note else "<p>none</p>"


def kept_sample(board: Path, run_id: str, artefact_name: str) -> Path:
    """Where a site written by ``write_site`` keeps one of a run's audio samples: the one
    layout both this module and benchmarks/generation_table.py rely on."""
    return Path(board) / "runs" / run_id / "samples" / Path(artefact_name).name


def _copy_artefacts(
    rows: list[dict[str, Any]], out_dir: Path, samples_per_run: int = 3
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """runs/<id>/config.json for every run shown, plus the first few audio samples a
    generation or extraction task wrote through its sink (``artefacts``), for listening."""
    links, samples = {}, {}
    for row in rows:
        if row.get("status") != "finished":
            continue
        folder = out_dir / "runs" / row["run_id"]
        config = {
            "run_id": row["run_id"],
            "system": row.get("system"),
            "config": row.get("config"),
            "corpus": row.get("corpus"),
            "corpus_version": row.get("corpus_version"),
            "git_commit": row.get("git_commit"),
            "versions": row.get("versions"),
            "metrics": row.get("metrics"),
            "timings": row.get("timings"),
            "labels": row.get("labels"),
            "layer_weights": layer_weights(row),
        }
        atomic.write_json(folder / "config.json", config)
        _keep_items(row, folder)
        links[row["run_id"]] = f"runs/{row['run_id']}/config.json"
        source = Path(row["run_dir"]) / "artefacts" if row.get("run_dir") else None
        audio = [a for a in (row.get("artefacts") or []) if a.get("kind") == "audio"]
        for artefact in audio[:samples_per_run]:
            path = source / artefact["name"] if source else None
            if path is None or not path.is_file() or path.suffix not in AUDIO_SUFFIXES:
                continue
            target = kept_sample(out_dir, row["run_id"], artefact["name"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            samples.setdefault(row["run_id"], []).append(target.relative_to(out_dir).as_posix())
    return links, samples


def _keep_items(row: dict[str, Any], folder: Path) -> None:
    """Keep a gzipped copy of the run's predictions.jsonl (up to MAX_ITEMS_BYTES
    compressed) beside its config, and, where scoring them needs the corpus manifest,
    the resolved per-item inputs, so the paired tests of this board can be re-run from
    the committed folder on a machine that never had the run or the corpus."""
    source = predictions_path(row)
    if source is None:
        return
    if source.suffix != ".gz":  # not yet the committed copy
        packed = gzip.compress(source.read_bytes(), mtime=0)  # mtime 0: same bytes every build
        if len(packed) > MAX_ITEMS_BYTES:
            return
        atomic.write_with(folder / COMMITTED_ITEMS, lambda tmp: tmp.write_bytes(packed))
    items = resolved_items(row)  # None without the corpus: an earlier copy stays
    if items is not None:
        resolved = dump_resolved(items)
        if len(resolved) <= MAX_ITEMS_BYTES:
            atomic.write_with(folder / COMMITTED_RESOLVED, lambda tmp: tmp.write_bytes(resolved))


def write_site(
    rows: list[dict[str, Any]],
    out_dir: Path,
    references: dict[str, Any] | None = None,
    significance: bool = True,
) -> list[Path]:
    """Write leaderboard.md, leaderboard.csv, index.html (= leaderboard.html), runs/."""
    out_dir = Path(out_dir)
    board = build_board(rows, references=references, significance=significance)
    shown = {r["run_id"] for c in board.cells.values() for r in c.runs}
    links, samples = _copy_artefacts([r for r in rows if r["run_id"] in shown], out_dir)
    page = render_html(board, links, samples)
    written = []
    for name, text in (
        ("leaderboard.md", render_markdown(board)),
        ("leaderboard.csv", render_csv(board)),
        ("index.html", page),
        ("leaderboard.html", page),
    ):
        atomic.write_text(out_dir / name, text)
        written.append(out_dir / name)
    atomic.write_text(
        out_dir / "board.json",
        json.dumps(
            {
                "systems": board.systems,
                "columns": [c.key for c in board.columns],
                "overall": board.overall,
                "mean_rank": board.overall_rank,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
    )
    written.append(out_dir / "board.json")
    return written
