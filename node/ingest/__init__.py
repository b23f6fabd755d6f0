"""Ingest: the path every event takes into a node, peer batch or client body.

- `checks`: the state-independent checks of PROTOCOL §2.1, line by line (`check_lines`).
- `verifier` and `worker`: signatures on every core (worker processes, the calling thread
  for what they have no time for).
- `admission`: the pure admission core (checked events and a snapshot of the store in,
  outcomes and the groups to commit out), and `admissible` for one event.
- `pipeline`: the one pipeline around a store (`Ledger`): reads a snapshot per step,
  commits, judges again with verdicts known when a signature fails.
- `groups`: `drive` runs an ingest generator on the event loop (`drive_now` without one);
  `ClientGroups` is the group commit of client events.
"""

from .admission import Outcome
from .checks import PendingEvent, SealedLine, check_lines
from .groups import ClientGroups, drive, drive_now
from .verifier import MIN_PARALLEL, SignatureVerifier, Ticket, shared_verifier

__all__ = ["ClientGroups", "drive", "drive_now", "SignatureVerifier", "Ticket", "PendingEvent", "SealedLine",
           "check_lines", "shared_verifier", "MIN_PARALLEL", "Outcome"]
