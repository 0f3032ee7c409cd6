"""``nbterm log [HOST] [--since AGE]``: the journal (services/journal.py), oldest first."""

from __future__ import annotations

import argparse
import time

from nbterm.cli.common import age_seconds
from nbterm.locations import resolve_paths, tildify
from nbterm.presenters import journal_line
from nbterm.services.journal import Journal

LAST = 100


def cmd_log(args: argparse.Namespace) -> int:
    paths = resolve_paths(args.config)  # the journal needs no valid config (it outlives one)
    journal = Journal(paths)
    since = time.time() - age_seconds(args.since, "--since takes an age") if args.since else None
    entries = journal.entries(args.name, since)
    if since is None:
        entries = entries[-LAST:]
    if not entries:
        who = f" of {args.name}" if args.name else ""
        print(f"nothing in the journal{who} yet ({tildify(journal.path)})")
        return 0
    now = time.time()
    for entry in entries:
        print(journal_line(entry, now))
    return 0
