"""``proxy_command``'s tokens for nbterm's own SSH: replaced as OpenSSH replaces them, each value
quoted for the shell that runs the command."""

from __future__ import annotations

import subprocess

from nbterm.services.remote.ssh import SshTarget


def test_tokens_are_replaced_and_quoted() -> None:
    target = SshTarget(
        "box", "i-0abc;touch /tmp/x", 2222, "box", "ec2 user", proxy_command="echo %h %p %r 100%%"
    )
    argv = target.proxy_argv()
    assert argv is not None
    assert argv[:2] == ["/bin/sh", "-c"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert done.stdout == "i-0abc;touch /tmp/x 2222 ec2 user 100%\n"


def test_no_proxy_command_means_no_argv() -> None:
    assert SshTarget("box", "h", 22, "box").proxy_argv() is None
