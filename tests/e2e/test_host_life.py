"""A host's life off the happy path, asserted from EC2's side (moto), never from nbterm's words.

Each case fails one step of `up`, `launch`, `d` / `down`, the daily budget's stop or `terminate`
and checks the invariants of DESIGN.md ("A host's life"):

- every path that starts an instance ends with it in use, guarded, or stopped;
- every stop runs its final sync first, over a connection of its own when none is open; a stop
  the person asked for refuses when that sync fails, a stop a limit decided retries for a
  bounded time and then stops anyway;
- `terminate` cancels a spot instance's persistent request before it ends the instance (moto
  does not model persistent requests: botocore's Stubber holds the order).

The loopback sshd plays the instance; moto's EC2 holds its state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from botocore.stub import ANY, Stubber

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.aws import ec2_client
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.spending import Spend
from nbterm.services.host.down import SyncedHome, sync_then_stop
from nbterm.services.host.up import Face, open_host
from nbterm.services.remote.host_keys import HostKeyQuestion, KnownHosts
from nbterm.services.remote.jupyter import JupyterError
from nbterm.services.remote.ssh import SshError, close_quietly, connect, target_for
from tests.harness.cockpit import RecordingScreen, trust_the_test_sshd
from tests.harness.guard import guard_pid
from tests.harness.moto_ec2 import MotoEc2, stopped_instance
from tests.harness.procs import free_port
from tests.harness.remote import ec2_config_text, end_guard, remote_shell, sync_rule
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

BROKEN_JUPYTER = "/nonexistent/jupyter lab"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def _config(
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    *,
    command: str | None = None,
    extra: str = "",
    aws: str = "",
    spot: bool = False,
) -> LoadedConfig:
    # a Jupyter that cannot start has a tmux session of its own: another test's running server
    # would otherwise be found and reattached to
    own = 'jupyter = { tmux_session = "nbterm-life-no-jupyter" }\n' if command else ""
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=free_port(), host=own,
                           command=command, template="spot = true\n" if spot else "")  # fmt: skip
    text = text.replace("console_key_wait = 0\n", f"console_key_wait = 0\n{aws}")
    return load_config(write_config(text + extra))


def _state(config: LoadedConfig, instance_id: str) -> str:
    found = Ec2(config.aws).get(instance_id)
    return found.state if found else "gone"


def _running_instance(config: LoadedConfig) -> str:
    ec2 = Ec2(config.aws)
    launched = ec2.launch(config.hosts["gpu"], config.templates["gpu"])
    ec2.wait_for(launched.id, "running", delay=0.1)
    return launched.id


async def _refuse(question: HostKeyQuestion) -> bool:
    return False


@pytest.fixture
def remote_folder(sshd: SshServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A folder of the test's own on the "remote", removed after."""
    name = f"life-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    remote_shell(sshd, f"rm -rf ~/{name}")
    yield name
    remote_shell(sshd, f"rm -rf ~/{name}")


# --- up that fails after it started the instance ------------------------------------------------

UP_FAILURES = {
    "no Jupyter": (BROKEN_JUPYTER, trust_the_test_sshd, JupyterError),
    "host key refused": (None, _refuse, SshError),
}


@pytest.mark.parametrize("step", sorted(UP_FAILURES))
async def test_an_up_that_fails_after_starting_the_instance_stops_it_again(
    step: str, moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path],
    paths: Paths,
) -> None:  # fmt: skip
    command, ask, error = UP_FAILURES[step]
    config = _config(moto_ec2, sshd, write_config, command=command)
    instance_id = stopped_instance(config)
    notes: list[str] = []
    face = Face(ask=ask, on_event=lambda event: None, note=notes.append)
    with pytest.raises(error):
        await open_host(config, paths, "gpu", face)
    assert _state(config, instance_id) == "stopped", notes  # before: "running", unwatched
    assert any(f"the up failed after nbterm started {instance_id}" in n for n in notes), notes
    assert any(f"{instance_id} is stopped again (its disk is kept)" in n for n in notes), notes


async def test_an_up_that_fails_leaves_an_instance_it_did_not_start_running(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    """Someone else's running instance (the console, another laptop) is theirs to stop."""
    config = _config(moto_ec2, sshd, write_config, command=BROKEN_JUPYTER)
    instance_id = _running_instance(config)
    notes: list[str] = []
    face = Face(ask=trust_the_test_sshd, on_event=lambda event: None, note=notes.append)
    with pytest.raises(JupyterError):
        await open_host(config, paths, "gpu", face)
    assert _state(config, instance_id) == "running"
    assert not any("stopping it again" in note for note in notes)


async def test_keep_running_leaves_it_running_and_says_whether_it_is_guarded(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    config = _config(moto_ec2, sshd, write_config, command=BROKEN_JUPYTER)
    instance_id = stopped_instance(config)
    notes: list[str] = []
    face = Face(ask=trust_the_test_sshd, on_event=lambda e: None, note=notes.append,
                keep_running=True)  # fmt: skip
    with pytest.raises(JupyterError):
        await open_host(config, paths, "gpu", face)
    assert _state(config, instance_id) == "running"
    assert any("left running as asked, with NO idle guard" in note for note in notes), notes
    Ec2(config.aws).stop(instance_id)


# --- launch that fails halfway ------------------------------------------------------------------


def test_a_launch_whose_ssh_never_answers_leaves_no_instance(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path]
) -> None:
    config = _config(moto_ec2, sshd, write_config)
    closed = free_port()
    host = dataclasses.replace(config.hosts["gpu"], port=closed)
    notes: list[str] = []
    with pytest.raises(Ec2Error, match="did not answer"):
        lifecycle.launch(Ec2(config.aws), host, config.templates["gpu"], note=notes.append,
                         timeout=1, delay=0.2)  # fmt: skip
    states = [i.state for i in Ec2(config.aws).managed([])]
    assert states == [] or set(states) <= {"terminated", "shutting-down"}, states
    assert any("nothing of this launch is left running" in note for note in notes), notes


def test_a_launch_that_fails_halfway_cancels_its_spot_request_too(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path]
) -> None:
    """Stubber: moto makes no spot request. The wait for the instance to run fails (AWS
    throttles the look): its request is cancelled, then the instance terminated."""
    config = _config(moto_ec2, sshd, write_config, spot=True)
    client = ec2_client(config.aws)
    pending = {"InstanceId": "i-0aaaaaaaaaaaaaaaa", "State": {"Name": "pending"},
               "InstanceLifecycle": "spot", "SpotInstanceRequestId": "sir-0123"}  # fmt: skip
    reservation = {"Reservations": [{"Instances": [pending]}]}
    with Stubber(client) as stubber:
        stubber.add_response("describe_instances", {"Reservations": []}, None)  # none yet
        stubber.add_response("run_instances", {"Instances": [pending]}, None)
        stubber.add_client_error("describe_instances", "RequestLimitExceeded")
        stubber.add_response("describe_instances", reservation, None)
        stubber.add_response(
            "cancel_spot_instance_requests", {}, {"SpotInstanceRequestIds": ["sir-0123"]}
        )
        stubber.add_response("terminate_instances", {}, {"InstanceIds": ["i-0aaaaaaaaaaaaaaaa"]})
        stubber.add_response("describe_instances", reservation, None)
        with pytest.raises(Ec2Error, match="RequestLimitExceeded"):
            lifecycle.launch(Ec2(config.aws, client), config.hosts["gpu"],
                             config.templates["gpu"], note=lambda m: None)  # fmt: skip
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("limits", [True, False], ids=["a template with limits", "no limits"])
def test_a_cli_launch_ends_with_the_instance_guarded_or_says_it_is_not(
    limits: bool, moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path],
    paths: Paths,
) -> None:  # fmt: skip
    """Before: `nbterm launch` ended with a running instance and no guard, saying "next: up"."""
    template = "idle_stop_minutes = 30\n" if limits else ""
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=free_port(),
                           template=template)  # fmt: skip
    config = load_config(write_config(text))
    fingerprint = asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint()
    done = subprocess.run(
        [sys.executable, "-m", "nbterm", "launch", "gpu", "--accept-host-key", fingerprint],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [instance] = Ec2(config.aws).managed([])
    assert instance.state == "running"
    link_target = target_for(config.hosts["gpu"], config, address="127.0.0.1", alias=instance.id)

    async def guard_there() -> int | None:
        link = await connect(link_target, KnownHosts(paths.known_hosts), None)
        try:
            pid = await guard_pid(link)
            if pid is not None:
                await end_guard(link)
            return pid
        finally:
            close_quietly(link)

    if limits:
        assert f"{instance.id} runs; idle guard armed on the instance" in done.stdout, done.stdout
        assert asyncio.run(guard_there()) is not None  # from the instance's side
    else:
        assert f"{instance.id} runs, with NO idle guard" in done.stdout, done.stdout
    assert not (paths.state_dir / "sentinel.log").exists()  # disarmed: it ended doing nothing
    Ec2(config.aws).terminate(instance.id)


# --- terminate ----------------------------------------------------------------------------------


def test_terminate_cancels_the_spot_request_before_it_ends_the_instance(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    """Terminating an instance of an open persistent request makes AWS launch a new one: the
    request is cancelled first (the order held by Stubber; before: no cancel at all)."""
    config = _config(moto_ec2, sshd, write_config, spot=True)
    client = ec2_client(config.aws)
    running = {"InstanceId": "i-0bbbbbbbbbbbbbbbb", "State": {"Name": "running"},
               "InstanceLifecycle": "spot", "SpotInstanceRequestId": "sir-0456",
               "Tags": [{"Key": "nbterm:host", "Value": "gpu"}]}  # fmt: skip
    gone = {**running, "State": {"Name": "terminated"}}
    with Stubber(client) as stubber:
        stubber.add_response("describe_instances", {"Reservations": [{"Instances": [running]}]},
                             {"Filters": ANY})  # fmt: skip
        stubber.add_response(
            "cancel_spot_instance_requests", {}, {"SpotInstanceRequestIds": ["sir-0456"]}
        )
        stubber.add_response("terminate_instances", {}, {"InstanceIds": ["i-0bbbbbbbbbbbbbbbb"]})
        for _ in range(2):
            stubber.add_response("describe_instances", {"Reservations": [{"Instances": [gone]}]},
                                 {"InstanceIds": ["i-0bbbbbbbbbbbbbbbb"]})  # fmt: skip
        notes: list[str] = []
        done = lifecycle.terminate(Ec2(config.aws, client), config.hosts["gpu"], paths,
                                   note=notes.append, delay=0.1)  # fmt: skip
        stubber.assert_no_pending_responses()
    assert done.state == "terminated"
    assert any("cancelling its spot request sir-0456" in note for note in notes)


# --- d in the cockpit, on an instance not up here -----------------------------------------------


async def test_d_on_a_running_instance_not_up_here_syncs_it_first(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    remote_folder: str, tmp_path: Path,
) -> None:  # fmt: skip
    """Before: 'final sync' was said, none ran, and the notebook saved on the remote never
    came home."""
    from nbterm.ui.controller import Controller

    local = tmp_path / "home copies"
    rule = sync_rule(remote_folder, local, host="gpu")
    config = _config(moto_ec2, sshd, write_config, extra=rule)
    instance_id = _running_instance(config)
    remote_shell(sshd, f"mkdir -p ~/{remote_folder} && cat > ~/{remote_folder}/late.ipynb",
                 NOTEBOOK)  # fmt: skip
    screen = RecordingScreen()
    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd)  # type: ignore[arg-type]
    await controller.down("gpu", stop_instance=True)
    assert (local / "late.ipynb").is_file(), screen.story()
    assert _state(config, instance_id) == "stopped", screen.story()
    assert screen.statuses()[-1] == "down"


async def test_d_whose_final_sync_fails_refuses_to_stop(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    remote_folder: str, tmp_path: Path,
) -> None:  # fmt: skip
    """A stop the person asked for: refused, the instance keeps running, and it says so."""
    from nbterm.ui.controller import Controller

    rule = sync_rule(remote_folder, tmp_path / "copies", host="gpu")  # no such remote folder
    config = _config(moto_ec2, sshd, write_config, extra=rule)
    instance_id = _running_instance(config)
    screen = RecordingScreen()
    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd)  # type: ignore[arg-type]
    await controller.down("gpu", stop_instance=True)
    assert _state(config, instance_id) == "running"
    failed = [detail for status, detail in screen.story() if status == "failed"]
    assert failed and "the instance was NOT stopped" in failed[-1], screen.story()
    Ec2(config.aws).stop(instance_id)


# --- the daily budget's stop --------------------------------------------------------------------


async def test_the_budget_stops_anyway_when_the_final_sync_keeps_failing(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    remote_folder: str, tmp_path: Path,
) -> None:  # fmt: skip
    """Before: 'the final sync failed: the instance was NOT stopped', and it ran on, over
    budget. Now: retried for the grace period (0 here), then stopped, saying both."""
    from nbterm.ui.controller import Controller

    rule = sync_rule(remote_folder, tmp_path / "copies", host="gpu")  # no such remote folder
    config = _config(moto_ec2, sshd, write_config, extra=rule,
                     aws="final_sync_grace_minutes = 0\n")  # fmt: skip
    instance_id = _running_instance(config)
    screen = RecordingScreen()
    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd)  # type: ignore[arg-type]
    await controller.budget_stop("gpu")
    assert _state(config, instance_id) == "stopped", screen.story()
    story = screen.story()
    assert any("stopping anyway (the daily budget)" in detail for _s, detail in story), story
    last = story[-1]
    assert last[0] == "down"
    assert "by the daily budget" in last[1] and "the final sync did NOT complete" in last[1]


async def test_a_limit_retries_the_final_sync_and_stops_once_it_works(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    remote_folder: str, tmp_path: Path,
) -> None:  # fmt: skip
    """The first sync fails (the remote folder is not there yet), the retry brings the
    notebook home, then the instance stops: nothing saved before the stop is lost."""
    from nbterm.ui.controller import Controller

    local = tmp_path / "copies"
    config = _config(moto_ec2, sshd, write_config,
                     extra=sync_rule(remote_folder, local, host="gpu"))  # fmt: skip
    instance_id = _running_instance(config)
    screen = RecordingScreen()
    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd)  # type: ignore[arg-type]
    attempts: list[SyncedHome] = []
    real = controller._final_sync

    async def sync(name: str) -> SyncedHome:
        synced = await real(name)
        attempts.append(synced)
        if len(attempts) == 1:  # the remote comes back between the tries
            remote_shell(sshd, f"mkdir -p ~/{remote_folder} && cat > ~/{remote_folder}/saved.ipynb",
                         NOTEBOOK)  # fmt: skip
        return synced

    controller._final_sync = sync  # type: ignore[method-assign]
    result = await sync_then_stop(
        "budget", sync=lambda: controller._final_sync("gpu"),
        stop=lambda: asyncio.to_thread(lifecycle.stop, Ec2(config.aws), config.hosts["gpu"],
                                       note=lambda m: None, delay=0.1),
        note=lambda m: None, grace=30, retry_first=0.5,
    )  # fmt: skip
    assert [a.outcome for a in attempts] == ["failed", "done"]
    assert result.stopped and result.synced.ok
    assert (local / "saved.ipynb").is_file()
    assert _state(config, instance_id) == "stopped"


async def test_headless_up_applies_the_daily_budget_to_its_own_instance(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Before: the budget lived in the cockpit's screen; `nbterm up` never applied it."""
    from nbterm.services.host import up as host_up

    config = _config(moto_ec2, sshd, write_config, aws="daily_budget = 5.0\n")
    instance_id = _running_instance(config)

    def over_budget(*args: object) -> object:
        async def spend() -> Spend:
            return Spend(6.0, 5.0)

        return spend

    monkeypatch.setattr(host_up, "_own_spend", over_budget)  # moto's prices are fake
    face = Face(ask=trust_the_test_sshd, on_event=lambda e: None, note=lambda m: None,
                budget=True)  # fmt: skip
    opened = await open_host(config, paths, "gpu", face)
    try:
        await asyncio.wait_for(opened.session.ended.wait(), 30)
        assert "reached the daily budget ($5.00)" in opened.session.reason
        assert opened.session.stopped_by_us
    finally:
        await opened.session.down(final_sync=False)
    assert _state(config, instance_id) == "stopped"
