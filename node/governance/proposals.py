"""Reading a proposal's body: kind, close, effect, quorum and threshold as exact values.

Pure decision rules: no I/O, no clock. Numbers come from the JSON body through
`charter.exact()`, so a threshold of 0.1 is exactly 1/10 and no comparison ever uses a float.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..protocol.charter import Rules, exact
from ..protocol.events import Event
from ..protocol.times import parse_ms

__all__ = [
    "KINDS",
    "EFFECTS",
    "DEFAULT_THRESHOLD",
    "kind_of",
    "closes_ms",
    "effect_of",
    "has_effect",
    "quorum_of",
    "threshold_of",
]

KINDS = ("consent", "action", "vote")
EFFECTS = ("appoint_connector", "remove_connector", "admit_chapter")
DEFAULT_THRESHOLD = Fraction(1, 2)  # §5 "threshold t (default 0.5)"


def kind_of(proposal: Event) -> str:
    return str(proposal.body["kind"])


def closes_ms(proposal: Event) -> int | None:
    """The close instant of a consent or vote proposal (or feedback request); None for action."""
    closes = proposal.body.get("closes_at")
    return parse_ms(closes) if isinstance(closes, str) else None


def effect_of(proposal: Event) -> tuple[str, dict[str, Any]] | None:
    """(effect name, its fields) for a consent/vote proposal carrying one (§4), else None."""
    if proposal.type != "proposal" or kind_of(proposal) == "action":
        return None  # §4: an action proposal carries no effect
    effect = proposal.body.get("effect")
    if not isinstance(effect, dict) or len(effect) != 1:
        return None
    (name, fields), = effect.items()
    return (name, dict(fields)) if name in EFFECTS else None


def has_effect(event: Event) -> bool:
    return event.type == "proposal" and effect_of(event) is not None


def quorum_of(proposal: Event, rules: Rules) -> Fraction:
    """§5: the proposal's own `quorum`, else `rules.quorum`."""
    q = proposal.body.get("quorum")
    return exact(q) if isinstance(q, int | float) and not isinstance(q, bool) else rules.quorum


def threshold_of(proposal: Event) -> Fraction:
    """§5: the proposal's own `threshold`, else 1/2."""
    t = proposal.body.get("threshold")
    return exact(t) if isinstance(t, int | float) and not isinstance(t, bool) else DEFAULT_THRESHOLD
