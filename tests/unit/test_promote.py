"""Promotion from staging into the user's folder: nothing is ever lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbterm.services.sync.notebooks import problem_with
from nbterm.services.sync.promote import BACKUP_DIR, Manifest, digest, promote

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def notebook(text: str = "") -> str:
    return json.dumps(
        {"cells": [{"cell_type": "markdown", "source": text, "metadata": {}}], "metadata": {},
         "nbformat": 4, "nbformat_minor": 5}
    )  # fmt: skip


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Manifest]:
    staging, local = tmp_path / "staging", tmp_path / "local"
    staging.mkdir()
    local.mkdir()
    return staging, local, Manifest(tmp_path / "manifest.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (NOTEBOOK, None),
        (NOTEBOOK[:-10], "not complete JSON"),
        ("[]", "not a notebook: the JSON is not an object"),
        ('{"cells": []}', "not a notebook: no nbformat version"),
        ('{"nbformat": 4}', "not a notebook: no list of cells"),
        ('{"nbformat": 3, "worksheets": []}', None),
        ("", "not complete JSON"),
    ],
)
def test_notebook_checks(tmp_path: Path, content: str, problem: str | None) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    found = problem_with(path)
    assert (found is None) == (problem is None)
    if problem:
        assert found is not None
        assert found.startswith(problem)


def test_other_files_are_not_judged(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text("print(")
    assert problem_with(path) is None


def test_new_files_are_placed_and_remembered(places: tuple[Path, Path, Manifest]) -> None:
    staging, local, manifest = places
    (staging / "sub").mkdir()
    (staging / "sub" / "a.ipynb").write_text(notebook("one"))
    result = promote(staging, local, ["sub/a.ipynb"], manifest)
    assert result.placed == ["sub/a.ipynb"]
    assert (local / "sub" / "a.ipynb").read_text() == notebook("one")
    assert manifest.entries["sub/a.ipynb"] == digest(local / "sub" / "a.ipynb")
    assert list((local / "sub").iterdir()) == [local / "sub" / "a.ipynb"]  # no temp left


def test_an_update_replaces_an_untouched_local_copy(places: tuple[Path, Path, Manifest]) -> None:
    staging, local, manifest = places
    (staging / "a.ipynb").write_text(notebook("one"))
    promote(staging, local, ["a.ipynb"], manifest)
    (staging / "a.ipynb").write_text(notebook("two"))
    result = promote(staging, local, ["a.ipynb"], manifest)
    assert result.placed == ["a.ipynb"]
    assert result.conflicts == []
    assert (local / "a.ipynb").read_text() == notebook("two")


def test_a_local_edit_is_backed_up_before_it_is_replaced(
    places: tuple[Path, Path, Manifest],
) -> None:
    staging, local, manifest = places
    (staging / "a.ipynb").write_text(notebook("one"))
    promote(staging, local, ["a.ipynb"], manifest)
    (local / "a.ipynb").write_text(notebook("my local edit"))
    (staging / "a.ipynb").write_text(notebook("two"))
    result = promote(staging, local, ["a.ipynb"], manifest, stamp="20261125-120000")
    backup = local / BACKUP_DIR / "20261125-120000" / "a.ipynb"
    assert result.conflicts == [("a.ipynb", str(backup))]
    assert backup.read_text() == notebook("my local edit")
    assert (local / "a.ipynb").read_text() == notebook("two")


def test_an_unknown_local_file_counts_as_a_local_edit(places: tuple[Path, Path, Manifest]) -> None:
    staging, local, manifest = places
    (local / "a.ipynb").write_text(notebook("was here first"))
    (staging / "a.ipynb").write_text(notebook("remote"))
    result = promote(staging, local, ["a.ipynb"], manifest, stamp="s")
    assert result.conflicts
    assert (local / BACKUP_DIR / "s" / "a.ipynb").read_text() == notebook("was here first")


def test_a_half_written_notebook_never_replaces_a_good_copy(
    places: tuple[Path, Path, Manifest],
) -> None:
    staging, local, manifest = places
    (staging / "a.ipynb").write_text(notebook("good"))
    promote(staging, local, ["a.ipynb"], manifest)
    (staging / "a.ipynb").write_text(notebook("better")[:25])
    result = promote(staging, local, ["a.ipynb"], manifest)
    assert result.placed == []
    assert result.rejected[0][0] == "a.ipynb"
    assert (local / "a.ipynb").read_text() == notebook("good")
    assert manifest.rejected == {"a.ipynb"}
    # once the remote save completes, the retry places it
    (staging / "a.ipynb").write_text(notebook("better"))
    result = promote(staging, local, sorted(manifest.rejected), manifest)
    assert result.placed == ["a.ipynb"]
    assert manifest.rejected == set()


def test_paths_cannot_escape_the_folder(places: tuple[Path, Path, Manifest]) -> None:
    staging, local, manifest = places
    assert promote(staging, local, ["../evil.ipynb", "/etc/passwd"], manifest).placed == []


def test_the_manifest_survives_a_restart(places: tuple[Path, Path, Manifest]) -> None:
    staging, local, manifest = places
    (staging / "a.ipynb").write_text(notebook("one"))
    promote(staging, local, ["a.ipynb"], manifest)
    manifest.save()
    again = Manifest(manifest.path)
    assert again.entries == manifest.entries
