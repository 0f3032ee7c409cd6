"""The remote writes Jupyter's runtime file: nbterm builds the URL it opens in the browser from
parts, so no runtime file can point the browser (and the token) anywhere but 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from nbterm.services.remote.jupyter import JupyterServer, parse_runtime_files

SEP = "\x1e"


def listing(*infos: dict[str, object]) -> str:
    return "".join(f"{SEP}/x/jpserver-{i}.json\n{json.dumps(info)}" for i, info in enumerate(infos))


GOOD = {"port": 8888, "pid": 42, "base_url": "/", "token": "abc", "root_dir": "/home/u"}


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "@evil.example/steal/"},
        {"base_url": "//evil.example/"},
        {"base_url": "/ok/?x=1#frag"},
        {"base_url": "/a b/"},
        {"base_url": "\x1b]2;x\x07/"},
        {"base_url": 5},
        {"port": "8888; rm -rf ~"},
        {"port": 0},
        {"port": True},
        {"pid": "1; reboot"},
        {"pid": -1},
        {"token": ["a"]},
        {"root_dir": {"a": 1}},
    ],
    ids=repr,
)
def test_a_hostile_runtime_file_is_not_used(change: dict[str, object]) -> None:
    assert parse_runtime_files(listing({**GOOD, **change})) == []


def test_a_plain_runtime_file_is_used() -> None:
    assert parse_runtime_files(listing(GOOD, {**GOOD, "base_url": "/user/ana/"})) == [
        GOOD, {**GOOD, "base_url": "/user/ana/"}
    ]  # fmt: skip


@pytest.mark.parametrize("token", ["abc", "a&next=http://evil.example/", "a b#c", "é/?"])
def test_the_url_always_names_loopback_and_carries_the_token_whole(token: str) -> None:
    server = JupyterServer(port=8888, pid=1, root_dir="/", base_url="/user/ana/", token=token)
    parts = urlsplit(server.local_url(8157))
    assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", 8157)
    assert parts.path == "/user/ana/"
    assert parse_qs(parts.query) == {"token": [token]}
    assert not parts.fragment
