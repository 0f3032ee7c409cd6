"""The remote writes Jupyter's runtime file: nbterm builds the URL it opens in the browser from
parts, so no runtime file can point the browser (and the token) anywhere but 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from nbterm.services.remote.jupyter import (
    JupyterServer,
    discover,
    ensure,
    parse_runtime_files,
    stop,
)
from nbterm.services.remote.ssh import Link, run
from tests.harness.remote import own_runtime
from tests.harness.sshd import SshServer

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


async def stand_in(link: Link, sshd: SshServer, looks_like_ours: bool = True) -> int:
    """A live process of the remote user; with ``looks_like_ours``, its arguments hold the --ip
    nbterm gives its servers. Returns its pid."""
    program = f"{sshd.remote_python} -c 'import time; time.sleep(60)' --ip=127.0.0.1"
    _s, out, _e = await run(
        link, f"{program if looks_like_ours else 'sleep 60'} >/dev/null 2>&1 & echo $!"
    )
    return int(out.strip())


@pytest.mark.sshd
async def test_a_hostile_runtime_file_on_the_remote_is_not_followed(
    sshd: SshServer, tmp_path: Path
) -> None:
    """A jpserver-*.json planted in nbterm's remote runtime folder, naming a live process of the
    remote user and a base_url that would send the browser (and the token) elsewhere."""
    async with own_runtime(sshd, tmp_path, "nbterm-hostile") as (link, settings, folder):
        pid = await stand_in(link, sshd)
        try:
            for name, base_url in (("evil", "@evil.example/steal/"), ("fine", "/plain/")):
                info = {**GOOD, "pid": pid, "port": 18999, "base_url": base_url}
                await run(link, f"mkdir -p {folder} && cat > {folder}/jpserver-{name}.json "
                                f"<<'EOF'\n{json.dumps(info)}\nEOF")  # fmt: skip
                found = await discover(link, settings)
                if name == "evil":
                    assert found is None
                else:
                    assert found is not None and found.base_url == "/plain/"
                await run(link, f"rm -f {folder}/jpserver-{name}.json")
        finally:
            await run(link, f"kill {pid} 2>/dev/null; true")


@pytest.mark.sshd
async def test_a_runtime_file_left_by_a_killed_server_is_never_taken_for_the_new_one(
    sshd: SshServer, tmp_path: Path
) -> None:
    """A server killed without warning leaves its jpserver-*.json; its pid comes back as another
    process (pids wrap). Taken for the server nbterm starts next, its old token answered 403 for
    ever (seen in this suite: 2-3 failures in 8 runs of the restart tests before the fix)."""
    async with own_runtime(sshd, tmp_path, "nbterm-stale", remote_port=18997) as (
        link, settings, folder,
    ):  # fmt: skip
        pid = await stand_in(link, sshd, looks_like_ours=False)  # the pid, come back
        try:
            stale = {**GOOD, "pid": pid, "port": settings.remote_port, "token": "stale"}
            await run(link, f"mkdir -p {folder} && cat > {folder}/jpserver-{pid}.json "
                            f"<<'EOF'\n{json.dumps(stale)}\nEOF")  # fmt: skip
            assert await discover(link, settings) is None  # a live pid, not a server of ours
            server = await ensure(link, settings, token="mine")
            assert server.token == "mine"
            assert server.pid != pid
            _s, listing, _e = await run(link, f"ls {folder}")
            assert f"jpserver-{pid}.json" not in listing
        finally:
            await stop(link, settings)
            await run(link, f"kill {pid} 2>/dev/null; true")


@pytest.mark.sshd
async def test_a_classic_notebook_servers_runtime_file_is_found(
    sshd: SshServer, tmp_path: Path
) -> None:
    """Notebook < 7 writes nbserver-PID.json (``notebook_dir`` where Jupyter Server has
    ``root_dir``): a host whose command is `jupyter notebook` on an old image is found again."""
    async with own_runtime(sshd, tmp_path, "nbterm-classic") as (link, settings, folder):
        pid = await stand_in(link, sshd)
        try:
            classic = {
                "base_url": "/", "hostname": "127.0.0.1", "notebook_dir": "/home/u/nb",
                "password": False, "pid": pid, "port": 18996, "secure": False, "sock": "",
                "token": "classic", "url": "http://127.0.0.1:18996/",
            }  # fmt: skip
            await run(link, f"mkdir -p {folder} && cat > {folder}/nbserver-{pid}.json "
                            f"<<'EOF'\n{json.dumps(classic)}\nEOF")  # fmt: skip
            found = await discover(link, settings)
            assert found is not None
            assert (found.pid, found.port, found.token, found.root_dir) == (
                pid,
                18996,
                "classic",
                "/home/u/nb",
            )
        finally:
            await run(link, f"kill {pid} 2>/dev/null; true")
