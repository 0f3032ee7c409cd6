"""The services layer (and config, locations, the headless CLI) never imports Textual or Rich."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import nbterm

HEADLESS_PREFIXES = (
    "nbterm.services",
    "nbterm.config",
    "nbterm.cli",
    "nbterm.locations",
    "nbterm.safe_text",
    "nbterm.browser",
    "nbterm.presenters",
    "nbterm.files",
)
UI_ONLY = {"nbterm.cli.run_app"}  # imports the app, on purpose, when the cockpit opens


def headless_modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(nbterm.__path__, prefix="nbterm.")
        if info.name.startswith(HEADLESS_PREFIXES)
    ]
    return sorted(set(names) - UI_ONLY)


def test_there_are_headless_modules_to_check() -> None:
    modules = headless_modules()
    assert "nbterm.services.remote.ssh_config" in modules
    assert "nbterm.config.loader" in modules
    assert "nbterm.cli.main" in modules


def test_headless_modules_import_neither_textual_nor_rich() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {headless_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'rich'})\n"
        "print(json.dumps(ui))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_app_py_is_wiring() -> None:
    from pathlib import Path

    app = Path(nbterm.__file__).with_name("app.py").read_text()
    assert len(app.splitlines()) < 150


def test_readme_config_reference_matches_the_schema() -> None:
    from pathlib import Path

    from nbterm.config.reference import END, START, render

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    assert readme[start:end] == render(), (
        "README's config reference is stale: regenerate it with "
        "`.venv/bin/python -m nbterm.config.reference`"
    )


def test_ci_runs_the_readme_test_command() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "```sh\ntests/run\n```" in readme
    assert "exec tests/run" in (root / ".ci" / "run").read_text()


def test_the_cockpit_starts_without_boto3_or_asyncssh() -> None:
    """Start-up stays light: the heavy clients load when a host is first acted on."""
    code = (
        "import json, sys\n"
        "import nbterm.app, nbterm.cli.main\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 'asyncssh', 'moto') if m in sys.modules)\n"
        "print(json.dumps(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
