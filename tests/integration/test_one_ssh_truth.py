"""One SSH truth: for the same host, nbterm's own SSH (asyncssh) and OpenSSH (rsync, `nbterm
ssh`) are told the same things, from the one resolved ``Host``. OpenSSH's side is read back with
the real `ssh -G` on the generated file; asyncssh's from the options object it would connect with.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import _options, target_for
from nbterm.services.remote.ssh_config import write_ssh_config
from tests.harness.openssh import ssh_g


def _key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_both_stacks_are_told_the_same(
    write_config: Callable[[str], Path], paths: Paths, tmp_path: Path
) -> None:
    keys = tmp_path / "k e y s"  # (a space: quoted for each consumer)
    keys.mkdir()
    key = _key(keys / "id_ed25519")
    agent = keys / "agent.sock"
    certificate = keys / "id_ed25519-cert.pub"
    certificate.write_text(key.with_suffix(".pub").read_text())  # (never read by ssh -G)
    config = load_config(
        write_config(
            "[hosts.lab]\n"
            'hostname = "lab.example.org"\nport = 2222\nuser = "ana"\n'
            f'identity_file = "{key}"\nidentity_agent = "{agent}"\n'
            f'certificate_file = "{certificate}"\n'
            'proxy_command = "aws ssm start-session --target %h --parameters portNumber=%p"\n'
        )
    )
    host = config.hosts["lab"]
    openssh = ssh_g(write_ssh_config(config, paths), "lab")
    target = target_for(host, config)
    options = _options(target, KnownHosts(paths.known_hosts))
    asyncssh_side = asyncssh.SSHClientConnectionOptions(
        **{k: v for k, v in options.items() if k not in ("client_keys", "client_certs")}
    )

    assert openssh["hostname"] == [options["host"]] == ["lab.example.org"]
    assert openssh["port"] == [str(options["port"])] == ["2222"]
    assert openssh["user"] == [asyncssh_side.username] == ["ana"]
    assert openssh["identityfile"] == options["client_keys"] == [str(key)]
    assert openssh["identitiesonly"] == ["yes"]
    assert options["agent_identities"] == [f"{key}.pub"]  # the agent's copy of that key only
    assert openssh["identityagent"] == [str(agent)] == [asyncssh_side.agent_path]
    assert openssh["certificatefile"] == options["client_certs"] == [str(certificate)]
    # the same command; OpenSSH replaces %h %p itself; for asyncssh nbterm runs it with them
    # replaced, on a socket pair as OpenSSH does (services/remote/proxy.py), never asyncssh's
    assert openssh["proxycommand"] == [host.proxy_command]
    assert asyncssh_side.proxy_command is None
    assert target.proxy_argv() == [
        "/bin/sh", "-c", "exec aws ssm start-session --target lab.example.org "
        "--parameters portNumber=2222",
    ]  # fmt: skip
    # host keys: both strict, both in nbterm's own file, under the same alias
    assert openssh["stricthostkeychecking"] == ["true"]
    assert openssh["userknownhostsfile"] == [str(paths.known_hosts)] == [options["known_hosts"]]
    assert openssh["hostkeyalias"] == [options["host_key_alias"]] == ["lab"]
