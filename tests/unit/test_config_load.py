"""Good configs: the examples in config/, the starter file, and how settings are inherited."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from nbterm.config import load_config, parse_config
from nbterm.config.locate import Position, locate
from nbterm.config.starter import starter_text
from tests.examples import EXAMPLES, provide_identity_files


def test_there_are_examples() -> None:
    assert {path.name for path in EXAMPLES} >= {"example.toml", "minimal.toml", "ssh-only.toml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_config_loads(example: Path, tmp_path: Path) -> None:
    provide_identity_files(example)
    copy = tmp_path / example.name
    shutil.copy(example, copy)
    copy.chmod(0o600)
    config = load_config(copy)
    assert config.hosts
    for rule in config.sync:
        assert rule.host in config.hosts


def test_the_starter_config_loads(tmp_path: Path) -> None:
    config = parse_config(starter_text(), tmp_path / "config.toml")
    assert config.hosts == {}
    assert config.raw.jupyter.local_port == 8157


def test_the_full_example_resolves_as_documented(tmp_path: Path) -> None:
    example = next(path for path in EXAMPLES if path.name == "example.toml")
    provide_identity_files(example)
    config = load_config(example)
    gpu, bastion, lab = config.hosts["gpu"], config.hosts["bastion"], config.hosts["lab-box"]
    assert gpu.is_ec2 and gpu.instance == "nb-gpu" and gpu.hostname is None
    assert gpu.user == "ubuntu"  # from [defaults]
    assert bastion.user == "me"  # its own
    assert gpu.identity_file == Path.home() / ".ssh" / "nbterm-ed25519"
    assert (lab.port, lab.proxy_jump) == (2222, "bastion")
    assert lab.jupyter.command == "/opt/conda/bin/jupyter lab"
    assert gpu.jupyter.command == "jupyter lab"
    # explicit local ports are kept; the others take the next free ones in order
    assert [h.jupyter.local_port for h in config.hosts.values()] == [8157, 8158, 8200]
    assert [rule.host for rule in config.sync] == ["gpu", "lab-box"]
    assert config.sync[1].include == ("*.ipynb", "*.py")
    assert config.sync[1].interval == 30


def test_automatic_local_ports_skip_explicit_ones(tmp_path: Path) -> None:
    config = parse_config(
        "[jupyter]\nlocal_port = 9000\n"
        '[hosts.a]\nhostname = "a"\n'
        '[hosts.b]\nhostname = "b"\njupyter = { local_port = 9001 }\n'
        '[hosts.c]\nhostname = "c"\n',
        tmp_path / "c.toml",
    )
    assert {n: h.jupyter.local_port for n, h in config.hosts.items()} == {
        "a": 9000,
        "b": 9001,
        "c": 9002,
    }


def test_config_objects_are_immutable(tmp_path: Path) -> None:
    config = parse_config('[hosts.a]\nhostname = "a"\n', tmp_path / "c.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.raw.hosts["a"].port = 1  # type: ignore[misc]


def test_relative_identity_file_is_relative_to_the_config(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "k"
    key.parent.mkdir()
    key.write_text("k")
    key.chmod(0o600)
    config = parse_config(
        '[hosts.a]\nhostname = "a"\nidentity_file = "keys/k"\n', tmp_path / "c.toml"
    )
    assert config.hosts["a"].identity_file == key


class TestLocate:
    SOURCE = (
        "# comment\n"
        "[hosts.gpu]\n"
        'instance = "x"  # trailing\n'
        '[hosts."odd.name"]\n'
        'hostname = "h"\n'
        'jupyter = { command = "j", local_port = 1 }\n'
        "[[sync]]\n"
        'host = "a"\n'
        'notes = """\n'
        "host = not a key\n"
        '"""\n'
        "[[sync]]\n"
        "  host = 'b'\n"
        "templates.t.ami = 'ami-1'\n"
    )

    def test_keys_and_tables(self) -> None:
        assert locate(self.SOURCE, ("hosts", "gpu", "instance")) == Position(3, 1, 12)
        position = locate(self.SOURCE, ("hosts", "odd.name", "hostname"), at_value=True)
        assert position is not None and (position.line, position.column) == (5, 12)

    def test_inline_tables(self) -> None:
        position = locate(self.SOURCE, ("hosts", "odd.name", "jupyter", "local_port"))
        assert position is not None and (position.line, position.column) == (6, 28)

    def test_arrays_of_tables_and_multiline_strings(self) -> None:
        first = locate(self.SOURCE, ("sync", 0, "host"))
        second = locate(self.SOURCE, ("sync", 1, "host"))
        assert first is not None and first.line == 8
        assert second is not None and (second.line, second.column) == (13, 3)

    def test_missing_key_falls_back_to_its_table(self) -> None:
        position = locate(self.SOURCE, ("sync", 1, "remote"))
        assert position is not None and position.line == 12

    def test_dotted_keys(self) -> None:
        position = locate(self.SOURCE, ("sync", 1, "templates", "t", "ami"))
        assert position is not None and position.line == 14
