"""The headless commands: config init / check / path, ssh-config."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.locations import Paths


def nbterm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbterm", *args], capture_output=True, text=True, check=False
    )


def test_config_path_follows_flag_and_environment(paths: Paths, tmp_path: Path) -> None:
    assert nbterm("config", "path").stdout.strip() == str(paths.config_file)
    other = tmp_path / "other.toml"
    assert nbterm("--config", str(other), "config", "path").stdout.strip() == str(other)


def test_config_init_writes_a_private_starter_and_never_overwrites(paths: Paths) -> None:
    done = nbterm("config", "init")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(paths.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.config_file.parent.stat().st_mode) == 0o700
    paths.config_file.write_text(paths.config_file.read_text() + "# mine\n")

    again = nbterm("config", "init")
    assert again.returncode == 2
    assert "already exists; nothing written" in again.stderr
    assert paths.config_file.read_text().endswith("# mine\n")

    forced = nbterm("config", "init", "--force")
    assert forced.returncode == 0
    backup = paths.config_file.with_name("config.toml.bak")
    assert backup.read_text().endswith("# mine\n")
    assert not paths.config_file.read_text().endswith("# mine\n")


def test_config_check_summarises(write_config: Callable[[str], Path]) -> None:
    write_config(
        '[hosts.lab]\nhostname = "lab.example.org"\nuser = "me"\n'
        '[hosts.gpu]\ninstance = "nb-gpu"\n'
        '[[sync]]\nhost = "lab"\nremote = "~/nb/"\nlocal = "/tmp/nb-local/"\n'
    )
    done = nbterm("config", "check")
    assert done.returncode == 0, done.stderr
    assert "2 host(s) (1 EC2, 1 SSH), 0 template(s), 1 sync rule(s)" in done.stdout
    assert "me@lab.example.org:22" in done.stdout
    assert "http://127.0.0.1:8157/" in done.stdout


def test_missing_config_is_a_clear_error() -> None:
    done = nbterm("config", "check")
    assert done.returncode == 2
    assert "no config file at" in done.stderr
    assert "nbterm config init" in done.stderr


def test_ssh_config_prints_the_generated_file(write_config: Callable[[str], Path]) -> None:
    write_config('[hosts.lab]\nhostname = "lab.example.org"\n')
    done = nbterm("ssh-config")
    assert done.returncode == 0
    assert "Host lab\n    HostName lab.example.org\n" in done.stdout
    assert "StrictHostKeyChecking yes" in done.stdout


def test_ssh_to_an_unknown_host_names_the_known_ones(write_config: Callable[[str], Path]) -> None:
    write_config('[hosts.lab]\nhostname = "lab.example.org"\n')
    done = nbterm("ssh", "lba")
    assert done.returncode == 1
    assert "no host named 'lba'" in done.stderr and "(hosts: lab)" in done.stderr


def test_version_and_module_entry_point() -> None:
    assert nbterm("--version").stdout.startswith("nbterm ")


def test_help_names_this_platforms_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS keeps it under ~/Library/Application Support: --help must not say ~/.config."""
    import platformdirs
    import platformdirs.macos

    from nbterm import locations
    from nbterm.cli.main import build_parser

    monkeypatch.delenv("XDG_CONFIG_HOME")  # (platformdirs honours it on macOS too)
    mac = Path(platformdirs.macos.MacOS("nbterm").user_config_dir) / "config.toml"
    assert "Library/Application Support/nbterm" in str(mac)
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda app: str(mac.parent))
    import nbterm.cli.main as cli_main

    monkeypatch.setattr(cli_main, "default_config_file", locations.default_config_file)
    help_text = build_parser().format_help()
    assert "Application" in help_text and "~/.config" not in help_text
