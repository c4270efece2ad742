"""Build and pip-install a tiny third-party plugin package into a folder (no network)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def install_plugin_package(
    tmp_path: Path, name: str, module: str, source: str, entry_points: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Write package ``name`` with ``module/__init__.py = source`` and the given entry
    points ({group: {plugin name: "module:attr"}}), pip-install it into a target folder
    and return an environment whose PYTHONPATH sees it."""
    package = tmp_path / "pkg"
    (package / module).mkdir(parents=True)
    (package / module / "__init__.py").write_text(source)
    groups = "\n".join(
        f'[project.entry-points."{group}"]\n'
        + "\n".join(f'{plugin} = "{target}"' for plugin, target in plugins.items())
        for group, plugins in entry_points.items()
    )
    (package / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1"
        """)
        + groups
        + "\n"
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


def speechbench_command() -> str:
    """The ``speechbench`` console script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "speechbench")
