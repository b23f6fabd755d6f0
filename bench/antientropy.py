"""Anti-entropy: what Negentropy costs to reconcile two stores, in bytes and round trips.

Pure: `node.federation.negentropy` directly, two in-memory item sets, no HTTP. The initiator
opens as `Federation.reconcile` (node/federation/sync.py) does: one whole-set fingerprint
(`initiate_whole_set`); the reference's opening (`initiate`, 16 bucket fingerprints) is
measured beside it for comparison. Node A holds
N events; node B holds the same N but for d of them (chosen at random), as a node that missed
d events does. A is the initiator, B the responder, each with the frame size limit a node uses
(256 KiB, `ChapterNode.reconciliation`). Items are what a node reconciles: (`created_at` in
whole seconds, 32-byte id), timestamps spread over 30 days.

Judged against: the full id list (what naive anti-entropy would send: N × 32 bytes) and the
information-theoretic floor of naming the d differing ids (d × 32 bytes).
"""

from __future__ import annotations

import hashlib
import random
import time

from .common import Context, Row, log

__all__ = ["run", "reconcile_cost"]

FRAME = 256 * 1024
DAY = 86_400


def _items(n: int, seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    start = 1_790_000_000
    return [(start + rng.randrange(30 * DAY), hashlib.sha256(b"%d %d" % (seed, i)).digest())
            for i in range(n)]


def reconcile_cost(n: int, d: int, *, seed: int = 6, opening: str = "whole set"
                   ) -> dict[str, float]:
    """Reconcile N vs N - d items: bytes each way, round trips, found ids, seconds.

    `opening`: "whole set" (what sync.py sends) or "reference" (`initiate()`)."""
    from node.federation.negentropy import Negentropy, VectorStorage

    items = _items(n, seed)
    missing = set(random.Random(seed + d).sample(range(n), d))
    a = VectorStorage(items)
    a.seal()
    b = VectorStorage(item for i, item in enumerate(items) if i not in missing)
    b.seal()
    t0 = time.perf_counter()
    initiator = Negentropy(a, FRAME, max_message_size=1 << 20)
    responder = Negentropy(b, FRAME, max_message_size=1 << 20)
    msg: bytes | None = (initiator.initiate_whole_set() if opening == "whole set"
                         else initiator.initiate())
    sent = received = rounds = 0
    have: set[bytes] = set()
    need: set[bytes] = set()
    while msg is not None:
        rounds += 1
        sent += len(msg)
        reply = responder.reconcile_responder(msg)
        received += len(reply)
        msg, h, nd = initiator.reconcile_initiator(reply)
        have.update(h)
        need.update(nd)
    seconds = time.perf_counter() - t0
    expected = {items[i][1] for i in missing}
    if have != expected or need:
        raise AssertionError(f"reconciliation found {len(have)} / {len(need)}, expected {d} / 0")
    return {"bytes": sent + received, "sent": sent, "received": received, "rounds": rounds,
            "seconds": seconds}


def run(ctx: Context) -> list[Row]:
    n = ctx.size(100_000, 2_000)
    ds = [0, 1, 10, 1_000, 10_000] if not ctx.smoke else [0, 1, 10, 100]
    full = n * 32
    rows = []
    for d in ds:
        log(f"anti-entropy: N = {n:,}, d = {d:,}")
        cost = reconcile_cost(n, d)
        ref = reconcile_cost(n, d, opening="reference")
        floor = d * 32
        ratio = f"{cost['bytes'] / full:.2%} of full list" + (
            f"; {cost['bytes'] / floor:.1f} × d·32 B" if floor else "")
        target = {0: "1 round trip, < 100 B", 10: "< 1 % of full list, ≤ 3 round trips"}.get(d, "")
        rows.append(Row("anti-entropy", f"N = {n:,}, d = {d:,}: bytes (both ways)",
                        cost["bytes"], "B", "full id list", full, target,
                        note=f"{cost['rounds']} round trip(s), {cost['seconds'] * 1000:.0f} ms of CPU "
                             f"for both sides; the reference's opening (`initiate()`): "
                             f"{ref['bytes']:,} B, {ref['rounds']} round trip(s)",
                        ratio_override=ratio))
        rows.append(Row("anti-entropy", f"N = {n:,}, d = {d:,}: round trips", cost["rounds"], ""))
    return rows
