"""nbterm's own files: 0600, in 0700 directories, written atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nbterm.files import write_private
from nbterm.locations import UnsafeDirectoryError, ensure_private_dir, resolve_paths


def test_write_private_modes_and_content(tmp_path: Path) -> None:
    target = tmp_path / "state" / "deep" / "file"
    write_private(target, "one\n")
    write_private(target, "two\n")
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["file"]  # no temporary left behind


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dir" / "file"
    write_private(target, "good\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_private(target, "new\n")
    assert target.read_text() == "good\n"
    assert [p.name for p in target.parent.iterdir()] == ["file"]


def test_an_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_a_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeDirectoryError, match="belongs to uid 65534"):
        ensure_private_dir(theirs)


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTERM_CONFIG", str(tmp_path / "c.toml"))
    monkeypatch.setenv("NBTERM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NBTERM_RUNTIME_DIR", str(tmp_path / "run"))
    paths = resolve_paths()
    assert paths.config_file == tmp_path / "c.toml"
    assert paths.known_hosts == tmp_path / "state" / "known_hosts"
    assert paths.control_dir == tmp_path / "run" / "cm"
    assert resolve_paths("~/other.toml").config_file == Path.home() / "other.toml"


def test_default_paths_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NBTERM_CONFIG", "NBTERM_STATE_DIR", "NBTERM_RUNTIME_DIR"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    paths = resolve_paths()
    assert paths.config_file == Path.home() / ".config" / "nbterm" / "config.toml"
    assert paths.state_dir == Path.home() / ".local" / "state" / "nbterm"
    assert paths.runtime_dir == tmp_path / "nbterm"


def test_a_folder_the_user_chose_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp: world-writable with the sticky bit
    project = tmp_path / "proj"
    project.mkdir(mode=0o755)
    project.chmod(0o755)
    write_private(shared / "hosts.toml", "x = 1\n", own_folder=False)
    write_private(project / "hosts.toml", "x = 1\n", own_folder=False)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE(project.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "hosts.toml").stat().st_mode) == 0o600


def test_import_ssh_output_leaves_the_folder_alone(tmp_path: Path) -> None:
    from nbterm.cli.main import main

    (tmp_path / "home" / ".ssh").mkdir(parents=True, exist_ok=True)
    ssh_config = tmp_path / "home" / ".ssh" / "config"
    ssh_config.write_text("Host box\n  HostName 127.0.0.1\n  User me\n")
    project = tmp_path / "proj"
    project.mkdir()
    project.chmod(0o755)
    code = main(["import-ssh", "--ssh-config", str(ssh_config), "--output",
                 str(project / "hosts.toml"), "box"])  # fmt: skip
    assert code == 0
    assert stat.S_IMODE(project.stat().st_mode) == 0o755


def test_a_runtime_folder_someone_else_made_is_refused(tmp_path: Path) -> None:
    """/tmp/nbterm-UID made beforehand by another user: nbterm must not put its control
    sockets and tunnel records inside it (only the leaf folders were checked before)."""
    import pwd

    from nbterm.locations import ensure_private_tree

    if os.getuid() != 0:
        pytest.skip("making a folder owned by another user needs root")
    try:
        other = pwd.getpwnam("nbterm-test").pw_uid
    except KeyError:
        pytest.skip("the test user nbterm-test does not exist (tests/setup.sh makes it)")
    planted = tmp_path / "nbterm-0"
    planted.mkdir(mode=0o777)
    os.chown(planted, other, -1)
    with pytest.raises(UnsafeDirectoryError):
        ensure_private_tree(planted, planted / "cm")
    assert not (planted / "cm").exists()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UnsafeDirectoryError):
        ensure_private_tree(link, link / "cm")
