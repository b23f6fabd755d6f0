"""The §5 tally object and its `tally_hash`: what a seal signs and a node reports.

Pure decision rules: no I/O, no clock. Kept apart from the rules that compute a tally
(node.governance.tally), which read admissibility, so that admissibility can check a sealed
tally's shape without importing them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol.events import canonical

__all__ = ["Tally", "OUTCOMES", "TALLY_FIELDS", "tally_hash"]

TALLY_FIELDS = ("proposal", "kind", "eligible", "yes", "no", "abstain", "not_cast",
                "vetoes", "endorsements", "outcome")
OUTCOMES: Mapping[str, tuple[str, ...]] = {
    "consent": ("adopted", "vetoed"),
    "action": ("adopted", "pending"),
    "vote": ("adopted", "rejected", "no_quorum"),
}


@dataclass(frozen=True, slots=True)
class Tally:
    """The §5 tally object, plus `adopted_at` (action only), which the object does not carry."""

    proposal: str
    kind: str
    outcome: str
    eligible: int = 0
    yes: int = 0
    no: int = 0
    abstain: int = 0
    not_cast: int = 0
    vetoes: int = 0
    endorsements: int = 0
    adopted_at: str | None = None  # action: created_at of the green-light endorsement

    def to_json(self) -> dict[str, Any]:
        """§5 tally object: exactly these keys, integers but the id, kind and outcome."""
        return {name: getattr(self, name) for name in TALLY_FIELDS}

    @property
    def hash(self) -> str:
        return tally_hash(self)


def tally_hash(tally: Tally | Mapping[str, Any]) -> str:
    """§5: lowercase hex SHA-256 of JCS(tally object)."""
    obj = tally.to_json() if isinstance(tally, Tally) else dict(tally)
    return hashlib.sha256(canonical(obj)).hexdigest()
