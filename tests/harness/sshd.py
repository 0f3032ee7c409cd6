"""A real OpenSSH sshd on 127.0.0.1 with its own host key, config and client key.

As root, it logs in as the unprivileged user ``nbterm-test`` made by ``tests/setup.sh`` (root's own
shell start-up is slow, and a test must not act as root on the "remote"). As a normal user, sshd
runs unprivileged and logs in as that same user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.procs import end_process, free_port, signal_tree, wait_for_banner

SSHD = Path("/usr/sbin/sshd")
TEST_USER = "nbterm-test"
REMOTE_VENV = Path("/opt/nbterm-test/remote-venv")


class MissingPartError(RuntimeError):
    """A real part the tests need is not installed: say what to install."""


def keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )


@dataclass
class SshServer:
    """A running sshd. ``known_hosts_line(alias)`` trusts its key under an alias."""

    workdir: Path
    port: int
    user: str
    home: Path
    client_key: Path
    host_key_pub: str
    remote_python: Path
    """A Python with jupyter-server that ``user`` can run."""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    host: str = "127.0.0.1"

    @property
    def config_file(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def log_file(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def known_hosts_line(self, alias: str) -> str:
        return f"{alias} {self.host_key_pub}\n"

    def openssh_args(self) -> list[str]:
        """Plain OpenSSH to this server as its user, its host key checked like any other."""
        known = self.workdir / "client_known_hosts"
        if not known.exists():
            known.write_text(self.known_hosts_line(f"[{self.host}]:{self.port}"))
        return [
            "-i", str(self.client_key), "-p", str(self.port),
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{self.user}@{self.host}",
        ]  # fmt: skip

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(self.config_file), "-E", str(self.log_file)],
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_banner(self.port, b"SSH-")
        except TimeoutError:
            end_process(self.proc)
            raise RuntimeError(f"sshd did not start:\n{self.log_file.read_text()}") from None

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def move(self, port: int) -> None:
        """Stop, then listen on ``port`` instead: an instance started again at a new address."""
        self.stop()
        text = self.config_file.read_text().replace(f"Port {self.port}\n", f"Port {port}\n")
        self.config_file.write_text(text)
        self.port = port
        (self.workdir / "client_known_hosts").unlink(missing_ok=True)  # it names the port
        self.start()

    def pause(self) -> None:
        """SIGSTOP sshd and its per-connection children: every link goes silent, as on a dead
        network (new TCP connections still complete in the kernel, then hear nothing)."""
        signal_tree(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        signal_tree(self.pid, signal.SIGCONT)

    def remove(self) -> None:
        """Stop it and delete its keys and config."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def check_parts() -> None:
    missing = [
        name
        for name, present in [
            ("openssh-server (/usr/sbin/sshd)", SSHD.exists()),
            ("openssh-client (ssh)", shutil.which("ssh") is not None),
            ("openssh-client (ssh-keygen)", shutil.which("ssh-keygen") is not None),
            ("rsync", shutil.which("rsync") is not None),
            ("tmux", shutil.which("tmux") is not None),
        ]
        if not present
    ]
    if missing:
        raise MissingPartError(
            "missing system packages: " + ", ".join(missing) + ". Run tests/setup.sh "
            "(as root it installs them with apt-get) or install them yourself."
        )


def make_sshd(base: Path | None = None) -> SshServer:
    """Write keys and config for a new sshd under ``base`` (not started)."""
    check_parts()
    if os.getuid() == 0:
        try:
            account = pwd.getpwnam(TEST_USER)
        except KeyError:
            raise MissingPartError(
                f"the test user {TEST_USER!r} does not exist: run tests/setup.sh as root"
            ) from None
        if not (REMOTE_VENV / "bin" / "jupyter-server").exists():
            raise MissingPartError(f"{REMOTE_VENV} is missing: run tests/setup.sh as root")
        remote_python = REMOTE_VENV / "bin" / "python"
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    else:
        account = pwd.getpwuid(os.getuid())
        import sys

        remote_python = Path(sys.prefix) / "bin" / "python"
    # Not under pytest's 0700 tree: the login user reads authorized_keys from here.
    workdir = Path(tempfile.mkdtemp(prefix="nbterm-sshd-", dir=base))
    workdir.chmod(0o755)
    host_key = workdir / "ssh_host_ed25519_key"
    keygen(host_key, "nbterm-test-host")
    client_key = workdir / "client_ed25519"
    keygen(client_key, "nbterm-test-client")
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    port = free_port()
    (workdir / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                f"AllowUsers {account.pw_name}",
                "AllowTcpForwarding local",
                "AllowStreamLocalForwarding no",
                "X11Forwarding no",
                "PermitTTY yes",
                "MaxStartups 100:30:200",
                "MaxSessions 100",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    host_key_pub = " ".join((workdir / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    return SshServer(
        workdir=workdir,
        port=port,
        user=account.pw_name,
        home=Path(account.pw_dir),
        client_key=client_key,
        host_key_pub=host_key_pub,
        remote_python=remote_python,
    )
