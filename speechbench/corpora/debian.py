"""Fetch real recordings from Debian packages without root.

``apt-get download NAME`` fetches a .deb into the current directory (no root needed)
and ``dpkg-deb -x`` unpacks it. Fetched packages are kept under
``data_dir()/_debian/`` so several corpora share one download. Offline, put the
``.deb`` files in a folder and point ``SPEECHBENCH_DEB_DIR`` at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from speechbench import paths
from speechbench.errors import CorpusError


def debian_root() -> Path:
    return paths.downloads_dir() / "_debian"


def _local_deb(name: str) -> Path | None:
    folder = os.environ.get("SPEECHBENCH_DEB_DIR")
    if not folder:
        return None
    matches = sorted(Path(folder).glob(f"{name}_*.deb"))
    return matches[-1] if matches else None


def _download(name: str, workdir: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise CorpusError(
            f"Debian package {name} is needed but apt-get is not available; download "
            f"{name}_*.deb elsewhere and set SPEECHBENCH_DEB_DIR to its folder"
        )
    result = subprocess.run(
        ["apt-get", "download", name], cwd=workdir, capture_output=True, text=True
    )
    debs = sorted(workdir.glob(f"{name}_*.deb"))
    if result.returncode != 0 or not debs:
        reason = (result.stderr.strip().splitlines() or ["no .deb was written"])[-1]
        raise CorpusError(
            f"cannot fetch Debian package {name} ({reason}); run `apt-get update` first, "
            f"or put {name}_*.deb in a folder and set SPEECHBENCH_DEB_DIR"
        )
    return debs[-1]


def fetch_package(name: str) -> Path:
    """Unpack Debian package ``name`` once and return the folder it was unpacked into."""
    target = debian_root() / name
    done = target / ".unpacked"
    if done.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as tmp:
        tmp_path = Path(tmp)
        deb = _local_deb(name) or _download(name, tmp_path)
        unpacked = tmp_path / "root"
        result = subprocess.run(
            ["dpkg-deb", "-x", str(deb), str(unpacked)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise CorpusError(f"cannot unpack {deb}: {result.stderr.strip()}")
        (unpacked / ".unpacked").write_text(deb.name + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)  # whole folder appears at once
    return target


def fetch_packages(names: list[str]) -> dict[str, Path]:
    return {name: fetch_package(name) for name in names}
