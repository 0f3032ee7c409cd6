"""Host keys read from an EC2 console: cloud-init's blocks, SHA256 and MD5 forms."""

from __future__ import annotations

import asyncssh
import pytest

from nbterm.services.cloud.console_keys import console_verifier
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.fingerprints import parse_console
from nbterm.services.remote.host_keys import (
    HostKeyQuestion,
    HostKeyVerificationError,
    fingerprint_question,
)

KEY = asyncssh.generate_private_key("ssh-ed25519")
OTHER = asyncssh.generate_private_key("ssh-ed25519")


def question(key: asyncssh.SSHKey = KEY) -> HostKeyQuestion:
    return fingerprint_question("gpu", "i-0abc", "198.51.100.7", 22, key)


def console(
    *, sha256: bool = True, md5: bool = False, keys: bool = True, key: asyncssh.SSHKey = KEY
) -> str:
    public = " ".join(key.export_public_key("openssh").decode().split()[:2])
    lines = ["[   10.1] cloud-init[812]: Cloud-init v. 23.1 running 'modules:final'"]
    if sha256 or md5:
        lines.append("-----BEGIN SSH HOST KEY FINGERPRINTS-----")
        if sha256:
            lines.append(f"ec2: 256 {key.get_fingerprint('sha256')} root@ip-10-0-0-5 (ED25519)")
        if md5:
            lines.append(f"ec2: 256 {key.get_fingerprint('md5')[4:]} root@ip-10-0-0-5 (ED25519)")
        lines.append("-----END SSH HOST KEY FINGERPRINTS-----")
    if keys:
        lines += ["-----BEGIN SSH HOST KEY KEYS-----", f"ec2: {public} root@ip-10-0-0-5",
                  "-----END SSH HOST KEY KEYS-----"]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        console(),
        console(keys=False),
        console(sha256=False, md5=True, keys=False),
        console(sha256=False, keys=True),
    ],
    ids=["sha256-and-keys", "sha256", "md5", "keys"],
)
def test_each_form_matches_the_right_key(text: str) -> None:
    found = parse_console(text)
    assert found.found
    assert found.matches(question(KEY))
    assert not found.matches(question(OTHER))


def test_no_block_finds_nothing() -> None:
    assert not parse_console("Linux version 2.6.16-xenU\nBIOS-provided physical RAM map:\n").found


class FakeEc2(Ec2):
    def __init__(self, outputs: list[str]) -> None:
        self.outputs = outputs
        self.calls = 0

    def console_output(self, instance_id: str) -> str:
        self.calls += 1
        return self.outputs[min(self.calls, len(self.outputs)) - 1]


async def test_a_matching_console_key_is_trusted_without_asking() -> None:
    async def never(q: HostKeyQuestion) -> bool:
        raise AssertionError("must not ask")

    verify = console_verifier(FakeEc2([console()]), "i-0abc", fallback=never, wait=1, delay=0.01)
    assert await verify(question(KEY))


async def test_a_different_key_is_refused_loudly() -> None:
    verify = console_verifier(FakeEc2([console()]), "i-0abc", fallback=None, wait=1, delay=0.01)
    with pytest.raises(HostKeyVerificationError, match="REFUSED") as caught:
        await verify(question(OTHER))
    assert OTHER.get_fingerprint() in str(caught.value)


async def test_the_console_is_read_again_until_the_block_appears() -> None:
    fake = FakeEc2(["booting...\n", "still booting\n", console()])
    verify = console_verifier(fake, "i-0abc", fallback=None, wait=5, delay=0.01)
    assert await verify(question(KEY))
    assert fake.calls == 3


async def test_no_block_in_time_falls_back_to_asking() -> None:
    asked: list[HostKeyQuestion] = []

    async def person(q: HostKeyQuestion) -> bool:
        asked.append(q)
        return True

    verify = console_verifier(FakeEc2(["no keys here\n"]), "i-0abc", fallback=person, wait=0.05,
                              delay=0.01)  # fmt: skip
    assert await verify(question(KEY))
    assert asked[0].sha256 == KEY.get_fingerprint()


async def test_no_block_and_nobody_to_ask_is_refused() -> None:
    verify = console_verifier(FakeEc2(["x\n"]), "i-0abc", fallback=None, wait=0.05, delay=0.01)
    with pytest.raises(HostKeyVerificationError, match="printed no host keys"):
        await verify(question(KEY))


def test_a_block_appended_by_someone_on_the_instance_is_a_conflict() -> None:
    """The real boot printed KEY; a later block (root on the instance can write to the console)
    names OTHER, the key of a machine in the middle. Neither is trusted."""
    forged = console() + console(key=OTHER)
    found = parse_console(forged)
    assert found.conflict
    assert not found.matches(question(OTHER))
    assert not found.matches(question(KEY))


def test_keys_without_their_fingerprints_are_a_conflict() -> None:
    public = " ".join(OTHER.export_public_key("openssh").decode().split()[:2])
    keys_block = f"-----BEGIN SSH HOST KEY KEYS-----\nec2: {public} root@x\n"
    mixed = console(keys=False) + keys_block + "-----END SSH HOST KEY KEYS-----\n"
    assert parse_console(mixed).conflict


def test_a_reboot_prints_the_same_blocks_again() -> None:
    found = parse_console(console() + "[ reboot ]\n" + console())
    assert not found.conflict
    assert found.matches(question(KEY))


async def test_a_conflict_is_refused_without_asking() -> None:
    asked: list[HostKeyQuestion] = []

    async def fallback(q: HostKeyQuestion) -> bool:
        asked.append(q)
        return True

    verify = console_verifier(
        FakeEc2([console() + console(key=OTHER)]), "i-0abc", fallback=fallback, wait=0
    )
    with pytest.raises(HostKeyVerificationError, match="disagree"):
        await verify(question(OTHER))
    assert asked == []
