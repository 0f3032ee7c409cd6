"""Waiting for spot capacity: only after an interruption, and never past what ends the wait."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import cast

from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.recovery import after_interruption as after

SPOT = "Server.SpotInstanceTermination: Spot instance termination"
USER = "Client.UserInitiatedShutdown: User initiated shutdown"


def instance(state: str, reason: str = "") -> Instance:
    return Instance("i-1", "nb", "gpu", state, "g5.xlarge", True, "us-east-1a",
                    dt.datetime.now(dt.UTC), "", "", "", reason)  # fmt: skip


class Scripted:
    """EC2's answers, one per question (the last one repeats)."""

    def __init__(self, *answers: Instance | None) -> None:
        self.answers = list(answers)
        self.asked = 0

    def get(self, instance_id: str) -> Instance | None:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    @property
    def ec2(self) -> Ec2:
        return cast(Ec2, self)


def test_after_a_spot_interruption_it_waits_until_the_instance_runs() -> None:
    ec2 = Scripted(instance("stopped", SPOT), instance("stopped", SPOT), instance("pending"),
                   instance("running"))  # fmt: skip
    notes: list[str] = []
    back = asyncio.run(after(ec2.ec2, "i-1", every=0.01, note=notes.append))
    assert back is not None and back.state == "running"
    assert notes == ["i-1 is stopped: waiting for spot capacity to come back",
                     "i-1 is pending: waiting for spot capacity to come back"]  # fmt: skip


def test_any_other_stop_is_not_waited_for() -> None:
    for first in (instance("stopped", USER), instance("running"), None):
        ec2 = Scripted(first, instance("running"))
        assert asyncio.run(after(ec2.ec2, "i-1", every=0.01)) is None
        assert ec2.asked == 1


def test_termination_or_d_or_a_day_ends_the_wait() -> None:
    ended = Scripted(instance("stopped", SPOT), instance("terminated"))
    assert asyncio.run(after(ended.ec2, "i-1", every=0.01)) is None

    async def pressed_d() -> Instance | None:
        stop = asyncio.Event()
        stopped = Scripted(instance("stopped", SPOT)).ec2
        waiting = asyncio.create_task(after(stopped, "i-1", stopped=stop, every=30.0))
        await asyncio.sleep(0.05)
        stop.set()
        return await asyncio.wait_for(waiting, 1.0)

    assert asyncio.run(pressed_d()) is None
    stuck = Scripted(instance("stopped", SPOT))
    assert asyncio.run(after(stuck.ec2, "i-1", every=0.01, give_up_after=0.1)) is None


def test_waiting_is_said_only_once_the_interruption_is_confirmed() -> None:
    """The face says "waiting" only when it is true: capacity that came back before the first
    look is not a wait (the cockpit said "waiting", then "down", before this)."""
    said: list[str] = []
    user = Scripted(instance("stopped", USER))
    asyncio.run(after(user.ec2, "i-1", every=0.01, waiting=lambda: said.append("waiting")))
    assert said == []
    spot = Scripted(instance("stopped", SPOT), instance("running"))
    back = asyncio.run(after(spot.ec2, "i-1", every=0.01, waiting=lambda: said.append("waiting")))
    assert back is not None and said == ["waiting"]


def test_an_interruption_the_session_saw_and_capacity_back_already_is_simply_back() -> None:
    said: list[str] = []
    quick = Scripted(instance("running"))
    back = asyncio.run(after(quick.ec2, "i-1", every=0.01, interrupted=True,
                             waiting=lambda: said.append("waiting")))  # fmt: skip
    assert back is not None and back.state == "running" and said == []
