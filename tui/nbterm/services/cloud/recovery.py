"""After a spot interruption: wait for the instance to come back, so the host can go up again.

nbterm requests spot instances as *persistent, stopping on interruption*: when AWS takes the
capacity back it stops the instance (disk kept), and when capacity returns the spot request
starts the same instance again, at a new address. A host that was up when it was interrupted is
watched here until its instance runs again; the caller then brings the host up again as before
(same local port, and the same URL, since nbterm keeps each host's token).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.instance import Instance

EVERY = 30.0
"""How often EC2 is asked while waiting (a DescribeInstances call: free)."""
GIVE_UP_AFTER = 24 * 3600.0
"""After a day, the request is probably gone: stop waiting, and say so."""


async def wait_for_capacity(
    ec2: Ec2,
    instance_id: str,
    *,
    stopped: asyncio.Event | None = None,
    every: float = EVERY,
    give_up_after: float = GIVE_UP_AFTER,
    note: Callable[[str], None] = lambda message: None,
) -> Instance | None:
    """The instance once it runs again; None when it was terminated, the wait was ``stopped``
    (the person pressed d), or it did not come back within ``give_up_after``."""
    deadline = time.monotonic() + give_up_after
    stopped = stopped or asyncio.Event()
    last_state = ""
    while time.monotonic() < deadline and not stopped.is_set():
        try:
            now = await asyncio.to_thread(ec2.get, instance_id)
        except Ec2Error as exc:  # EC2 unreachable for a moment: ask again later
            note(f"asking EC2 about {instance_id} failed ({exc}); asking again")
            now = None
            state = last_state
        else:
            if now is None or now.state in ("terminated", "shutting-down"):
                return None
            state = now.state
        if now is not None and state == "running":
            return now
        if state != last_state:
            last_state = state
            note(f"{instance_id} is {state}: waiting for spot capacity to come back")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), every)
    return None


async def after_interruption(
    ec2: Ec2,
    instance_id: str,
    *,
    stopped: asyncio.Event | None = None,
    every: float = EVERY,
    give_up_after: float = GIVE_UP_AFTER,
    note: Callable[[str], None] = lambda message: None,
    waiting: Callable[[], None] = lambda: None,
    interrupted: bool = False,
) -> Instance | None:
    """When a session ended because AWS interrupted its spot instance: the instance once it runs
    again (bring the host up again then). None at once for any other end (an idle stop, a stop
    by hand), or when waiting ends without it. ``waiting`` is called once the interruption is
    confirmed, before the wait (so that what the face shows is already true). ``interrupted``:
    the session itself saw the interruption (a notice, or EC2's reason as the link dropped), so
    an instance already running again by now is simply back."""
    try:
        now = await asyncio.to_thread(ec2.get, instance_id)
    except Ec2Error:
        return None
    if now is None:
        return None
    if interrupted and now.state in ("pending", "running"):
        return await wait_for_capacity(ec2, instance_id, stopped=stopped, every=every,
                                       give_up_after=give_up_after, note=note)  # fmt: skip
    if now.state not in ("stopping", "stopped") or not (now.spot_interrupted or interrupted):
        return None
    waiting()
    return await wait_for_capacity(
        ec2, instance_id, stopped=stopped, every=every, give_up_after=give_up_after, note=note
    )
