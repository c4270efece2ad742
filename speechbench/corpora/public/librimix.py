"""Libri2Mix: two LibriSpeech speakers mixed (optionally with WHAM! noise), CC-BY-4.0.

lhotse's ``prepare_librimix`` builds *virtual* mixtures from LibriSpeech and WHAM!
manifests; it does not read a generated Libri2Mix tree, so this small parser reads the
official ``metadata/mixture_<subset>_<type>.csv`` files. Their path columns hold the
absolute paths of the machine that generated the mixtures, so files are found by
mixture ID in the local tree instead. Splits: train-100 -> train, dev -> dev, test ->
test (train-360 is not used, as in SUPERB). The sources are labels:
``labels["sources"]`` = [s1, s2] paths, ``labels["noise"]`` for mix_both/mix_single.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from speechbench.corpora.base import Utterance
from speechbench.corpora.public.local import LocalCorpus, audio_info, read_rows, require_columns
from speechbench.errors import CorpusError


class Libri2Mix(LocalCorpus):
    name = "libri2mix"
    license = "CC-BY-4.0 (LibriSpeech); WHAM! noise CC-BY-NC-4.0"
    description = "Libri2Mix speech separation corpus (wav16k, min, mix_clean)"
    citation = (
        "Cosentino et al., LibriMix: An Open-Source Dataset for Generalizable Speech "
        "Separation, arXiv:2005.11262"
    )
    sample_rate = 16000
    provides = ("labels.sources",)
    env_var = "SPEECHBENCH_LIBRI2MIX_DIR"
    rate_dir: ClassVar[str] = "wav16k"
    mode: ClassVar[str] = "min"
    mixture: ClassVar[str] = "mix_clean"  # or mix_both, mix_single
    subsets: ClassVar[dict[str, str]] = {"train-100": "train", "dev": "dev", "test": "test"}
    layout = (
        "DIR/wav16k/min/metadata/mixture_{train-100,dev,test}_mix_clean.csv and "
        "DIR/wav16k/min/<subset>/{mix_clean,s1,s2}/<mixture_ID>.wav (DIR is Libri2Mix/)"
    )

    def collect(self, source: Path, root: Path) -> list[Utterance]:
        base = Path(self.rate_dir) / self.mode
        tables = {s: base / "metadata" / f"mixture_{s}_{self.mixture}.csv" for s in self.subsets}
        self.expect(
            source,
            *map(str, tables.values()),
            *(str(base / s / self.mixture) for s in self.subsets),
        )
        n_sources = 1 if self.mixture == "mix_single" else 2
        records = []
        for subset, split in self.subsets.items():
            table = source / tables[subset]
            rows = read_rows(table)
            require_columns(
                table, rows, "mixture_ID", *(f"source_{i + 1}_path" for i in range(n_sources))
            )
            folder = source / base / subset
            for row in rows:
                mix_id = row["mixture_ID"]
                mixture = folder / self.mixture / f"{mix_id}.wav"
                rate, duration = audio_info(mixture, str(table))
                sources = [folder / f"s{i + 1}" / f"{mix_id}.wav" for i in range(n_sources)]
                if self.mixture != "mix_clean":
                    sources.append(folder / "noise" / f"{mix_id}.wav")
                for path in sources:
                    src_rate, src_duration = audio_info(path, str(table))
                    if src_rate != rate or abs(src_duration - duration) > 1.0 / rate:
                        raise CorpusError(
                            f"{path}: {src_rate} Hz, {src_duration:.3f} s does not match its "
                            f"mixture {mixture} ({rate} Hz, {duration:.3f} s); regenerate it"
                        )
                labels = {
                    "sources": [str(p) for p in sources[:n_sources]],
                    "speakers": [part.split("-")[0] for part in mix_id.split("_")],
                    "subset": subset,
                }
                if self.mixture != "mix_clean":
                    labels["noise"] = str(sources[-1])
                records.append(
                    Utterance(
                        id=mix_id,
                        path=str(mixture),
                        sample_rate=rate,
                        duration=duration,
                        split=split,
                        language="en",
                        labels=labels,
                    )
                )
        return records
