"""Where remote twins go in a folder that folds names (nbterm.services.sync.folding): the plan for
the user's folder and the runs that keep them apart in a staging mirror that folds too."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from nbterm.services.sync.folding import EXACT, Folding, alternative, plan, probe, units

APFS = Folding(case=True, normalise=True)


def test_an_exact_folder_is_probed_as_exact_and_keeps_nothing_of_the_probe(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    assert probe(folder) == EXACT
    assert list(folder.iterdir()) == []


def test_a_folder_that_cannot_be_written_counts_as_exact(tmp_path: Path) -> None:
    assert probe(tmp_path / "missing") == EXACT


def test_nothing_moves_in_an_exact_folder() -> None:
    assert plan(["A.ipynb", "a.ipynb"], EXACT).places == {}
    assert units(["A.ipynb", "a.ipynb"], EXACT) == {}


def test_a_twin_is_placed_under_a_stable_visible_name() -> None:
    result = plan(["a.ipynb", "A.ipynb", "b.ipynb"], APFS)
    assert result.places == {"a.ipynb": alternative("a.ipynb")}
    assert result.place("A.ipynb") == "A.ipynb"
    assert alternative("a.ipynb").startswith("a (twin ")
    assert alternative("a.ipynb").endswith(").ipynb")
    assert alternative("a.ipynb") == alternative("a.ipynb") != alternative("A.ipynb")
    [twin] = result.twins
    assert (twin.path, twin.other) == ("a.ipynb", "A.ipynb")


def test_the_twin_placed_first_keeps_its_name() -> None:
    # nbterm placed a.ipynb under its own name before A.ipynb appeared on the remote
    result = plan(["A.ipynb", "a.ipynb"], APFS, {"a.ipynb": "a.ipynb"})
    assert result.places == {"A.ipynb": alternative("A.ipynb")}


def test_a_twin_stays_where_it_was_placed_after_its_pair_is_gone() -> None:
    result = plan(["a.ipynb"], APFS, {"a.ipynb": alternative("a.ipynb")})
    assert result.places == {"a.ipynb": alternative("a.ipynb")}


def test_folder_twins_and_normalisation_twins() -> None:
    nfc, nfd = (unicodedata.normalize(form, "café.ipynb") for form in ("NFC", "NFD"))
    result = plan(["Sub/x.ipynb", "sub/x.ipynb", "sub/y.ipynb", nfc, nfd], APFS)
    assert result.places == {
        "sub/x.ipynb": f"{alternative('sub')}/x.ipynb",
        "sub/y.ipynb": f"{alternative('sub')}/y.ipynb",
        nfc: alternative(nfc),
    }
    # case only: the two é are different names
    assert plan([nfc, nfd], Folding(case=True)).places == {}


def test_a_twin_whose_alternative_name_is_taken_is_not_placed() -> None:
    taken = alternative("a.ipynb")
    result = plan(["A.ipynb", "a.ipynb", taken], APFS)
    assert result.place("a.ipynb") is None
    assert result.place(taken) == taken


def test_an_alternative_name_is_never_longer_than_a_name_can_be() -> None:
    name = "é" * 120 + ".ipynb"  # 246 bytes
    assert len(alternative(name).encode()) <= 255


def test_the_staging_mirror_pulls_each_twin_into_a_folder_where_nothing_folds() -> None:
    paths = ["A.ipynb", "a.ipynb", "Sub/X", "Sub/x", "sub/X", "sub/y", "plain"]
    found = units(paths, APFS)
    assert found == {"a.ipynb": "1", "sub": "1", "Sub/x": "0.1"}
    # in every folder (the main mirror is ""), no two paths fold together
    folder_of = {
        path: next((found[p] for p in sorted(found, key=len, reverse=True)
                    if path == p or path.startswith(p + "/")), "")
        for path in paths
    }  # fmt: skip
    for folder in set(folder_of.values()):
        keys = [APFS.key(p) for p, f in folder_of.items() if f == folder]
        assert len(keys) == len(set(keys)), folder
