"""`nbterm import-ssh`: effective settings come from the real `ssh -G`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbterm.config import load_config, parse_config
from nbterm.config.import_ssh import host_names, import_hosts


@pytest.fixture
def user_ssh_config(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "lab_key").write_text("k")
    (keys / "lab_key").chmod(0o600)
    extra = tmp_path / "conf.d"
    extra.mkdir()
    (extra / "extra.conf").write_text("Host extra\n    HostName 192.0.2.5\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Include {extra}/*.conf\n"
        "\n"
        "Host bastion\n"
        "    HostName bastion.example.org\n"
        "    User me\n"
        "\n"
        "Host lab lab-alias\n"
        "    HostName lab.example.org\n"
        "    Port 2222\n"
        "    ProxyJump bastion\n"
        f"    IdentityFile {keys}/lab_key\n"
        "\n"
        "Host *.internal !skip.internal\n"
        "    User svc\n"
        "\n"
        "Host legacy\n"
        "    ProxyCommand nc %h %p\n"
    )
    return config


def test_host_names_skip_patterns_and_follow_includes(user_ssh_config: Path) -> None:
    assert host_names(user_ssh_config) == ["extra", "bastion", "lab", "lab-alias", "legacy"]


def test_settings_come_from_ssh_g(user_ssh_config: Path, tmp_path: Path) -> None:
    result = import_hosts(user_ssh_config, ["lab", "bastion", "extra"])
    assert result.hosts["lab"] == {
        "hostname": "lab.example.org",
        "port": 2222,
        "proxy_jump": "bastion",
        "identity_file": str(tmp_path / "keys" / "lab_key"),
    }
    assert result.hosts["bastion"] == {"hostname": "bastion.example.org", "user": "me"}
    assert result.hosts["extra"] == {"hostname": "192.0.2.5"}


def test_the_output_is_a_valid_config(user_ssh_config: Path, tmp_path: Path) -> None:
    result = import_hosts(user_ssh_config)
    text = result.to_toml(user_ssh_config)
    config = parse_config(text, tmp_path / "imported.toml")
    assert config.hosts["legacy"].proxy_command == "nc %h %p"  # OpenSSH's tokens, kept
    assert list(config.hosts) == ["extra", "bastion", "lab", "lab-alias", "legacy"]
    assert config.hosts["lab"].proxy_jump == "bastion"


def test_cli_prints_toml_and_appends_only_a_valid_result(
    user_ssh_config: Path, write_config: object
) -> None:
    def nbterm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nbterm", *args], capture_output=True, text=True, check=False
        )

    printed = nbterm("import-ssh", "--ssh-config", str(user_ssh_config), "lab", "bastion")
    assert printed.returncode == 0, printed.stderr
    assert '[hosts.lab]\nhostname = "lab.example.org"\nport = 2222\n' in printed.stdout

    assert callable(write_config)
    path: Path = write_config('[hosts.own]\nhostname = "own.example.org"\n')
    appended = nbterm("import-ssh", "--ssh-config", str(user_ssh_config), "--append", "bastion")
    assert appended.returncode == 0, appended.stderr
    assert list(load_config(path).hosts) == ["own", "bastion"]

    again = nbterm("import-ssh", "--ssh-config", str(user_ssh_config), "--append", "bastion")
    assert again.returncode == 2
    assert "not appended" in again.stderr
    assert list(load_config(path).hosts) == ["own", "bastion"]
