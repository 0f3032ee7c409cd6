"""The wheel that `pipx install` / `uv tool install` / `pip install` build from this tree: built
here offline (the dev extra provides setuptools >= 77, which the SPDX license field needs), then
imported from where it was installed, not from the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    work = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(out), str(ROOT)],
        check=True, cwd=work, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("nbterm_cockpit-*.whl")
    return built


def test_the_wheel_holds_everything_the_app_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "nbterm/py.typed",
        "nbterm/nbterm.tcss",
        "nbterm/services/remote/forwarder.py",
        "nbterm/cli/main.py",
    ):
        assert needed in names, needed
    assert any(name.startswith("nbterm/config/") and name.endswith(".toml") for name in names)
    assert not any(name.startswith("tests/") for name in names)
    info = next(name for name in names if name.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(info).decode()
    assert "License-Expression: MIT" in metadata
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    entry = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "nbterm = nbterm.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
         "-q", "--target", str(target), str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable checkout

    def nbterm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nbterm", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip

    where = subprocess.run(
        [sys.executable, "-c", "import nbterm, nbterm.app; print(nbterm.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(target))
    assert sysconfig.get_paths()["purelib"] not in where.stdout
    version = nbterm("--version")
    assert version.returncode == 0, version.stderr
    assert "0.1.0" in version.stdout
    assert nbterm("--help").returncode == 0
    assert "config.toml" in nbterm("config", "path").stdout
