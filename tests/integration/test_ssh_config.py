"""The generated OpenSSH config, read back by the real OpenSSH client and used against real sshd."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths, resolve_paths
from nbterm.services.remote import addresses
from nbterm.services.remote.ssh_config import (
    Ec2Address,
    control_path_fits,
    render_ssh_config,
    write_ssh_config,
)
from nbterm.services.sync.engine import rsync_quote
from tests.examples import EXAMPLES, provide_identity_files
from tests.harness.openssh import end_master, ssh_g
from tests.harness.sshd import SshServer


def one(settings: dict[str, list[str]], key: str) -> str:
    return settings[key][0]


def _load_example(example: Path, tmp_path: Path) -> LoadedConfig:
    provide_identity_files(example)
    copy = tmp_path / example.name
    shutil.copy(example, copy)
    copy.chmod(0o600)
    return load_config(copy)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_ssh_g_reports_what_the_toml_means(example: Path, tmp_path: Path, paths: Paths) -> None:
    config = _load_example(example, tmp_path)
    ec2 = {
        name: Ec2Address(f"i-0{index:016x}", f"ec2-198-51-100-{index}.compute-1.amazonaws.com")
        for index, (name, host) in enumerate(config.hosts.items())
        if host.is_ec2
    }
    generated = write_ssh_config(config, paths, ec2)
    for name, host in config.hosts.items():
        settings = ssh_g(generated, name)
        address = ec2[name].address if host.is_ec2 else host.hostname
        alias = ec2[name].instance_id if host.is_ec2 else name
        assert one(settings, "hostname") == address
        assert one(settings, "port") == str(host.port)
        if host.user:
            assert one(settings, "user") == host.user
        if host.identity_file:
            assert settings["identityfile"] == [str(host.identity_file)]
            assert one(settings, "identitiesonly") == "yes"
        if host.proxy_jump:  # spelled out as a ProxyCommand through the same file
            assert one(settings, "proxycommand").endswith(f"-W '[%h]:%p' {host.proxy_jump}")
        else:
            assert "proxycommand" not in settings
        assert one(settings, "hostkeyalias") == alias
        assert settings["userknownhostsfile"] == [str(paths.known_hosts)]
        assert settings["globalknownhostsfile"] == ["/dev/null"]
        assert one(settings, "stricthostkeychecking") == "true"
        assert one(settings, "updatehostkeys") == "false"
        assert one(settings, "batchmode") == "yes"
        assert one(settings, "serveraliveinterval") == str(host.keepalive_interval)
        assert one(settings, "serveralivecountmax") == str(host.keepalive_count_max)
        assert one(settings, "connecttimeout") == str(host.connect_timeout)
        assert one(settings, "controlmaster") == "auto"
        assert re.fullmatch(
            re.escape(str(paths.control_dir)) + r"/[0-9a-f]{40}", one(settings, "controlpath")
        )
        assert one(settings, "controlpersist") == "600"


def test_hosts_get_distinct_control_sockets(tmp_path: Path, paths: Paths) -> None:
    example = next(path for path in EXAMPLES if path.name == "example.toml")
    generated = write_ssh_config(_load_example(example, tmp_path), paths)
    sockets = {one(ssh_g(generated, name), "controlpath") for name in ("bastion", "lab-box")}
    assert len(sockets) == 2


def test_ec2_host_without_an_address_is_left_out_with_a_note(tmp_path: Path, paths: Paths) -> None:
    example = next(path for path in EXAMPLES if path.name == "example.toml")
    text = render_ssh_config(_load_example(example, tmp_path), paths)
    assert "Host gpu" not in text
    assert "# gpu: EC2 instance nb-gpu has no known address yet" in text


def test_generated_files_are_private(tmp_path: Path, paths: Paths) -> None:
    example = next(path for path in EXAMPLES if path.name == "minimal.toml")
    generated = write_ssh_config(_load_example(example, tmp_path), paths)
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.control_dir.stat().st_mode) == 0o700


def test_including_it_leaves_the_users_other_hosts_alone(tmp_path: Path, paths: Paths) -> None:
    example = next(path for path in EXAMPLES if path.name == "minimal.toml")
    generated = write_ssh_config(_load_example(example, tmp_path), paths)
    user_config = tmp_path / "user_ssh_config"
    include = next(line for line in generated.read_text().splitlines() if "Include" in line)
    assert include.startswith("#   Include ")  # the line the file's header tells people to use
    user_config.write_text(f"{include[4:]}\n\nHost other\n    HostName other.example.org\n")
    other = ssh_g(user_config, "other")
    assert one(other, "controlmaster") == "false"
    assert one(other, "stricthostkeychecking") != "true" or "hostkeyalias" not in other
    assert "hostkeyalias" not in other
    assert one(ssh_g(user_config, "lab"), "hostkeyalias") == "lab"


# --- against the real sshd ----------------------------------------------------------------------


@pytest.fixture
def box(
    sshd: SshServer,
    sshd_host_toml: Callable[[str], str],
    write_config: Callable[[str], Path],
    paths: Paths,
) -> Iterator[tuple[LoadedConfig, Path]]:
    """A config with one host, "box", that is the test sshd; its ssh master is ended afterwards."""
    config = load_config(write_config(sshd_host_toml("box")))
    generated = write_ssh_config(config, paths)
    yield config, generated
    end_master(generated, "box")


def run_ssh(generated: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(generated), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.sshd
def test_a_known_host_connects_and_reuses_one_connection(
    box: tuple[LoadedConfig, Path], trust_sshd: Callable[[str], None], sshd: SshServer
) -> None:
    _, generated = box
    trust_sshd("box")
    first = run_ssh(generated, "box", "id -un")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == sshd.user
    check = run_ssh(generated, "-O", "check", "box")
    assert "Master running" in check.stderr
    second = run_ssh(generated, "box", "echo reused")
    assert second.stdout.strip() == "reused"
    # one TCP login for both commands: sshd accepted a single publickey authentication
    assert sshd.log().count("Accepted publickey") >= 1


@pytest.mark.sshd
def test_an_unknown_host_key_is_refused_and_not_stored(
    box: tuple[LoadedConfig, Path], paths: Paths
) -> None:
    _, generated = box
    done = run_ssh(generated, "box", "true")
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr
    assert not paths.known_hosts.exists() or "ssh-ed25519" not in paths.known_hosts.read_text()


@pytest.mark.sshd
def test_trust_under_the_address_is_not_trust_under_the_alias(
    box: tuple[LoadedConfig, Path], trust_sshd: Callable[[str], None], sshd: SshServer
) -> None:
    _, generated = box
    trust_sshd(f"[{sshd.host}]:{sshd.port}")  # what plain `ssh` would have stored
    done = run_ssh(generated, "box", "true")
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr


@pytest.mark.sshd
def test_rsync_pulls_through_the_generated_config(
    box: tuple[LoadedConfig, Path], trust_sshd: Callable[[str], None], tmp_path: Path
) -> None:
    _, generated = box
    trust_sshd("box")
    remote_dir = f"nbterm-test-{uuid.uuid4().hex[:8]}"
    made = run_ssh(
        generated,
        "box",
        f"mkdir -p {remote_dir}/sub && echo '{{}}' > {remote_dir}/sub/'a b.ipynb'"
        f" && echo x > {remote_dir}/skip.txt",
    )
    assert made.returncode == 0, made.stderr
    local = tmp_path / "local"
    try:
        done = subprocess.run(
            [
                "rsync",
                "-a",
                "-m",
                "-e",
                f"ssh -F {rsync_quote(str(generated))}",
                "--include=*/",
                "--include=*.ipynb",
                "--exclude=*",
                f"box:{remote_dir}/",
                f"{local}/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert (local / "sub" / "a b.ipynb").read_text() == "{}\n"
        assert not (local / "skip.txt").exists()
    finally:
        run_ssh(generated, "box", f"rm -rf {remote_dir}")


@pytest.mark.sshd
def test_nbterm_ssh_runs_openssh_through_the_generated_config(
    box: tuple[LoadedConfig, Path], trust_sshd: Callable[[str], None], sshd: SshServer
) -> None:
    trust_sshd("box")
    done = subprocess.run(
        [sys.executable, "-m", "nbterm", "ssh", "box", "--", "echo", "hello from", "$(id -un)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hello from {sshd.user}"


TWO_EC2 = """
[hosts.a]
instance = "nb-a"
[hosts.b]
instance = "nb-b"
"""


def test_a_write_for_one_ec2_host_keeps_every_other_hosts_address(
    write_config: Callable[[str], Path], paths: Paths
) -> None:
    """`nbterm up b` while `a` is up and syncing: a's rsync and plain `ssh a` (through the
    documented Include) must still reach a; a stop forgets only the stopped one."""
    config = load_config(write_config(TWO_EC2))
    write_ssh_config(config, paths, {"a": Ec2Address("i-0aaaaaaaaaaaaaaaa", "198.51.100.1")})
    generated = write_ssh_config(
        config, paths, {"b": Ec2Address("i-0bbbbbbbbbbbbbbbb", "198.51.100.2")}
    )
    assert one(ssh_g(generated, "a"), "hostname") == "198.51.100.1"
    assert one(ssh_g(generated, "a"), "hostkeyalias") == "i-0aaaaaaaaaaaaaaaa"
    assert one(ssh_g(generated, "b"), "hostname") == "198.51.100.2"
    again = write_ssh_config(config, paths)  # a later process that looked nothing up
    assert one(ssh_g(again, "a"), "hostname") == "198.51.100.1"
    addresses.update(paths, {"a": None})  # a was stopped: its address is gone with it
    after = write_ssh_config(config, paths)
    assert one(ssh_g(after, "a"), "hostname") == "a"  # not a stale address
    assert one(ssh_g(after, "b"), "hostname") == "198.51.100.2"
    assert stat.S_IMODE(paths.state_file.stat().st_mode) == 0o600


def test_concurrent_writers_lose_no_address(
    write_config: Callable[[str], Path], paths: Paths
) -> None:
    names = [f"h{i}" for i in range(12)]
    config = load_config(
        write_config("".join(f'[hosts.{n}]\ninstance = "nb-{n}"\n' for n in names))
    )
    import threading

    def write(index: int, name: str) -> None:
        write_ssh_config(config, paths, {name: Ec2Address(f"i-{index:017x}", f"10.0.0.{index}")})

    threads = [threading.Thread(target=write, args=(i, n)) for i, n in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    generated = write_ssh_config(config, paths)
    for index, name in enumerate(names):
        assert one(ssh_g(generated, name), "hostname") == f"10.0.0.{index}"


@pytest.mark.sshd
async def test_a_literal_jump_host_is_checked_under_nbterms_rules(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    """proxy_jump = "user@host:port" (here: the test sshd, hopping to itself). Its key is
    checked in nbterm's known-hosts file under its own alias, by OpenSSH (rsync, nbterm ssh) and
    by asyncssh alike; unknown, it is refused by both, never asked about or taken from
    ~/.ssh/known_hosts."""
    from nbterm.services.remote.host_keys import KnownHosts
    from nbterm.services.remote.ssh import SshError, close_quietly, connect, run, target_for

    spec = f"{sshd.user}@{sshd.host}:{sshd.port}"
    text = (
        f'[hosts.box]\nhostname = "{sshd.host}"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key}"\nproxy_jump = "{spec}"\n'
    )
    config = load_config(write_config(text))
    jump_alias = f"jump.{sshd.host}.{sshd.port}"
    known = KnownHosts(paths.known_hosts)
    known.add("box", sshd.host_key_pub)
    generated = write_ssh_config(config, paths)
    assert one(ssh_g(generated, "box"), "proxycommand").endswith(f" nbterm-{jump_alias}")
    target = target_for(config.hosts["box"], config)
    assert target.jump is not None and target.jump.alias == jump_alias
    try:
        refused = run_ssh(generated, "box", "true")  # the jump's key is not known yet
        assert refused.returncode == 255
        with pytest.raises(SshError):
            await connect(target, known)
        known.add(jump_alias, sshd.host_key_pub)
        done = run_ssh(generated, "box", "echo through-the-jump")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "through-the-jump"
        link = await connect(target, known)
        try:
            _status, out, _err = await run(link, "echo asyncssh-too")
            assert out.strip() == "asyncssh-too"
        finally:
            close_quietly(link)
    finally:
        end_master(generated, "box")


@pytest.mark.sshd
def test_a_runtime_folder_too_long_for_a_socket_turns_sharing_off_not_ssh(
    sshd: SshServer,
    sshd_host_toml: Callable[[str], str],
    write_config: Callable[[str], Path],
    trust_sshd: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenSSH refuses a ControlPath over the socket limit (every rsync failed with exit 255):
    past it, the file says why and connections are simply not shared."""
    long_runtime = Path(tempfile.mkdtemp(prefix="nbt-" + "x" * 50))
    monkeypatch.setenv("NBTERM_RUNTIME_DIR", str(long_runtime))
    paths = resolve_paths()
    assert not control_path_fits(paths)
    config = load_config(write_config(sshd_host_toml("box")))
    generated = write_ssh_config(config, paths)
    text = generated.read_text()
    assert "too long" in text
    assert "ControlPath none" in text
    trust_sshd("box")
    try:
        done = run_ssh(generated, "box", "echo fine")
        assert (done.returncode, done.stdout.strip()) == (0, "fine"), done.stderr
    finally:
        shutil.rmtree(long_runtime, ignore_errors=True)
