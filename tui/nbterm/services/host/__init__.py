"""The one owner of a host's life, for the cockpit and the CLI alike.

- ``up``: bring a host up (start its instance if needed, wait for SSH, check its key, Jupyter,
  tunnel, sync); a failure after nbterm started the instance stops it again.
- ``session``: one host while it is up: the remote session, its sync rules and the watches
  (spot notice, idle, ``max_hours``, the guard's lease, the daily budget).
- ``down``: every stop and every end: a final sync first (over a connection of its own when no
  session is open), refused when a stop the user asked for cannot sync, retried for a bounded
  time when a limit decided it; ``terminate`` cancels a spot request before the instance.
- ``budget``: which instances the daily budget stops.

Each face keeps only its I/O: how to ask, where words go, where the tunnel runs.
"""
