"""``speechbench data check-leaks``: the shared-split check over the corpora on disk.

Reads the manifest of every prepared corpus (its current version) and the training
source lists of CTAP pretraining (the shipped checkpoint's ``ctap.train_sources.txt``
and every run under ``$SPEECHBENCH_HOME/pretrain``), then applies
:func:`speechbench.corpora.splits.find_leaks`. A pure function of those files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from speechbench import paths, registry
from speechbench.corpora.base import read_manifest
from speechbench.corpora.splits import find_leaks

SHIPPED_SOURCES = Path(__file__).resolve().parents[2] / "upstreams" / "checkpoints"


@dataclass
class LeakReport:
    checked: dict[str, int] = field(default_factory=dict)  # corpus -> records with sources
    unchecked: dict[str, int] = field(default_factory=dict)  # corpus -> records without
    pretraining: dict[str, int] = field(default_factory=dict)  # set name -> sources
    leaks: list[str] = field(default_factory=list)

    def lines(self, limit: int = 20) -> list[str]:
        out = [f"{name}: {n} records checked" for name, n in sorted(self.checked.items())]
        out += [
            f"{name}: {n} records name no sources (built before the shared split; rebuild)"
            for name, n in sorted(self.unchecked.items())
        ]
        out += [f"pretrain:{name}: {n} sources" for name, n in sorted(self.pretraining.items())]
        out += [f"LEAK {line}" for line in self.leaks[:limit]]
        if len(self.leaks) > limit:
            out.append(f"... and {len(self.leaks) - limit} more leaked sources")
        return out


def pretraining_sets(extra: list[Path] = ()) -> dict[str, list[str]]:
    """Name -> source ids of every known pretraining set (shipped + local runs)."""
    files = sorted(SHIPPED_SOURCES.glob("*.train_sources.txt"))
    files += sorted((paths.home() / "pretrain").glob("*/train_sources.txt"))
    files += list(extra)
    sets = {}
    for path in files:
        name = path.name.removesuffix(".train_sources.txt")
        if path.name == "train_sources.txt":
            name = f"run:{path.parent.name}"
        sets[name] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return sets


def check_corpora_on_disk(names: list[str] | None = None) -> LeakReport:
    report = LeakReport()
    manifests = {}
    for name in names or registry.names("corpora"):
        corpus = registry.get("corpora", name)()
        if not corpus.is_prepared():
            continue
        records = read_manifest(corpus.manifest_path)
        with_sources = [r for r in records if "sources" in (r.labels or {})]
        key = f"{name}@{corpus.version}"
        if with_sources:
            report.checked[key] = len(with_sources)
        if len(with_sources) < len(records):
            report.unchecked[key] = len(records) - len(with_sources)
        manifests[key] = with_sources
    sets = pretraining_sets()
    report.pretraining = {name: len(s) for name, s in sets.items()}
    report.leaks = find_leaks(manifests, sets)
    return report
