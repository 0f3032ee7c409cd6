"""The daily budget's decision, for every face: which running instances it stops now.

The cockpit applies it to every instance at each look at EC2; headless ``nbterm up`` applies it
to its own instance (``session.HostSession``). Each stop is a limit's stop (``down``): a final
sync first, retried for the grace period, then the stop.
"""

from __future__ import annotations

from collections.abc import Mapping

from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.spending import Spend


def to_stop(
    spend: Spend, instances: Mapping[str, Instance | None], stopping: set[str]
) -> list[tuple[str, Instance]]:
    """The (host, instance) pairs the budget stops now: every running instance once the day's
    spending reached the budget, each once (``stopping`` holds the ids already on their way;
    this adds them)."""
    if spend.verdict != "stop":
        return []
    chosen = []
    for name, instance in instances.items():
        if instance is None or instance.state != "running" or instance.id in stopping:
            continue
        stopping.add(instance.id)
        chosen.append((name, instance))
    return chosen
