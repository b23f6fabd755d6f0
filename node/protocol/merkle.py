"""RFC 6962 §2.1 Merkle Tree Hash over sorted act ids: the `acts_root` of a seal (PROTOCOL §6).

Pure: ids in, 32-byte root out. Leaves are the raw 32-byte ids sorted ascending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = ["merkle_root", "acts_root"]

_LEAF = b"\x00"
_NODE = b"\x01"


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, computed bottom-up without recursion.

    RFC 6962 splits at k, the largest power of two below n. Pairing adjacent nodes level by
    level and carrying an odd last node up unchanged builds exactly that tree.
    """
    if not leaves:
        return hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()
    level = [hashlib.sha256(_LEAF + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [
            hashlib.sha256(_NODE + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def acts_root(act_ids: Iterable[str]) -> str:
    """Lowercase hex root over hex event ids, sorted ascending as raw bytes."""
    return merkle_root(sorted(bytes.fromhex(i) for i in act_ids)).hex()
