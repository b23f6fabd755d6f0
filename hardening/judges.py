"""How the fuzz targets judge an input: `Finding` (what broke), `crash` (an exception, named by
where it came from), and the two Negentropy judges, which campaign 1 fuzzes and the saved
regressions replay (hardening/regressions.py)."""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Finding", "Target", "crash", "initiator_invariant", "negentropy_judge", "item_sets"]


@dataclass(frozen=True, slots=True)
class Finding:
    """An input broke the target's invariant."""

    kind: str  # "crash" or "invariant"
    signature: str  # one line that identifies the bug (exception and where it came from)
    detail: str
    bug: str | None = None  # a known bug (hardening/known.py) this is an instance of


Target = Callable[[bytes], "Finding | None"]


def crash(e: BaseException) -> Finding:
    from .known import bug_of_exception

    tb = traceback.extract_tb(e.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                  if "/node/" in f.filename), tb[-1].name if tb else "?")
    return Finding("crash", f"{type(e).__name__} at {where}",
                   "".join(traceback.format_exception(e))[-2000:], bug_of_exception(e))


def item_sets() -> list[tuple[Any, int]]:
    from node.federation.negentropy import VectorStorage

    from .kit import Kit

    kit = Kit()
    empty = VectorStorage()
    empty.seal()
    story = VectorStorage((e.created_ms // 1000, bytes.fromhex(e.id)) for e in kit.story_events)
    story.seal()
    rng = random.Random(7)
    big = VectorStorage((1_767_225_600 + rng.randrange(10_000), rng.randbytes(32))
                        for _ in range(300))
    big.seal()
    return [(empty, 0), (story, 0), (big, 4096)]


def negentropy_judge() -> Target:
    from node.federation.negentropy import Negentropy, NegentropyError

    storages = item_sets()

    def target(data: bytes) -> Finding | None:
        if not data:
            return None
        storage, limit = storages[data[0] % len(storages)]
        try:
            reply = Negentropy(storage, limit).reconcile_responder(data[1:])
        except NegentropyError:
            return None
        except Exception as e:
            return crash(e)
        if not isinstance(reply, bytes) or not reply:
            return Finding("invariant", "responder returned no message", repr(reply)[:200])
        if limit and len(reply) > limit:
            return Finding("invariant", "reply over the frame size limit", f"{len(reply)} > {limit}")
        initiator = Negentropy(storage, limit)
        initiator.set_initiator()
        try:
            initiator.reconcile_initiator(reply)
        except NegentropyError as e:
            return Finding("invariant", "the responder's reply is not a well-formed message",
                           f"{e} for message {data[:80].hex()}")
        except Exception as e:
            return crash(e)
        return None

    return target


def initiator_invariant() -> Target:
    """Campaign 1's judge of a hostile reply to our initiator (also replays regressions)."""
    from node.federation.negentropy import ID_SIZE, Negentropy, NegentropyError

    storages = item_sets()
    held = [set(s.ids(0, s.size())) for s, _ in storages]

    def target(data: bytes) -> Finding | None:
        if not data:
            return None
        which = data[0] % len(storages)
        opening = data[0] // len(storages) % 3  # initiate(), initiate_whole_set(), resumed
        storage, limit = storages[which]
        ne = Negentropy(storage, limit)
        if opening == 0:
            ne.initiate()
        elif opening == 1:
            ne.initiate_whole_set()
        else:
            ne.set_initiator()
        reply = data[1:]
        try:
            msg, have, need = ne.reconcile_initiator(reply)
        except NegentropyError:
            return None
        except Exception as e:
            return crash(e)
        ours = held[which]
        if msg is not None and (not isinstance(msg, bytes) or not msg):
            return Finding("invariant", "initiator returned a message that is not bytes",
                           repr(msg)[:200])
        if msg is not None and limit and len(msg) > limit:
            return Finding("invariant", "next message over the frame size limit",
                           f"{len(msg)} > {limit}")
        # each reply range costs at most one split (16 bounds + fingerprints, < 1 KiB) or an
        # IdList of our items, and the ranges cut our set into disjoint intervals
        if msg is not None and len(msg) > 64 * len(reply) + 64 * storage.size() + 64:
            return Finding("invariant", "next message out of proportion to the reply",
                           f"{len(msg)} bytes for a {len(reply)}-byte reply")
        if not set(have) <= ours or len(have) > len(ours):
            return Finding("invariant", "have names an id we do not hold", reply[:80].hex())
        # (a hostile IdList may name an id we hold outside its range, as with the reference:
        # fetching it again is a duplicate, so only "named by the reply" is required)
        if len(need) > len(reply) // ID_SIZE or any(id not in reply for id in need):
            return Finding("invariant", "need names an id the reply did not send",
                           reply[:80].hex())
        if msg is not None:
            try:  # what we send next must be a message any responder can parse
                Negentropy(storage, limit).reconcile_responder(msg)
            except NegentropyError as e:
                return Finding("invariant", "the initiator's next message is not well-formed",
                               f"{e} for reply {reply[:80].hex()}")
            except Exception as e:
                return crash(e)
        return None

    return target
