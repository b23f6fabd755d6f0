"""A signature-checking worker process: Ed25519 verdicts for frames read on stdin.

Started by `node.ingest.SignatureVerifier` (`python node/ingest/worker.py [CLAIMS_FD]`); it
imports only PyNaCl, so it stays small. It exits when its stdin closes, i.e. when its parent
goes away.

Wire format (little-endian), one request frame then one reply frame, in order:
    request: u32 size, u32 ticket, then records of: u32 message length, 32-byte public key,
             64-byte signature, message
    reply:   u32 count, then one byte per record: 1 the signature verifies, 0 it does not,
             2 not checked (the parent claimed the ticket)

Claims: CLAIMS_FD is a file shared with the parent, one byte per ticket slot
(`ticket % CLAIM_SLOTS`). Before checking a frame the worker marks its slot TAKEN, unless the
parent marked it STOLEN first: then the parent checks it itself and the reply only keeps the
frames in step. Both may check one frame (a race in the same instant): that costs time only.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys

__all__ = ["main", "encode_request", "verdicts", "CLAIM_SLOTS", "FREE", "TAKEN", "STOLEN",
           "NOT_CHECKED"]

_U32 = struct.Struct("<I")
CLAIM_SLOTS = 4096
FREE, TAKEN, STOLEN = 0, 1, 2
NOT_CHECKED = 2  # a reply byte: the parent checks this record itself


def encode_request(ticket: int, records: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """(public key, signature, message) records as one request frame for `ticket`."""
    body = b"".join(_U32.pack(len(m)) + pk + sig + m for pk, sig, m in records)
    return _U32.pack(len(body) + 4) + _U32.pack(ticket) + body


def verdicts(frame: bytes) -> bytes:
    """One verdict byte per record of a request's records (the frame after its ticket)."""
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    out = bytearray()
    pos, end = 0, len(frame)
    while pos < end:
        (length,) = _U32.unpack_from(frame, pos)
        pk = frame[pos + 4:pos + 36]
        signed = frame[pos + 36:pos + 100 + length]
        pos += 100 + length
        try:
            crypto_sign_open(signed, pk)
        except (BadSignatureError, ValueError):
            out.append(0)
        else:
            out.append(1)
    return bytes(out)


def _count(frame: memoryview) -> int:
    n, pos = 0, 0
    while pos < len(frame):
        pos += 100 + _U32.unpack_from(frame, pos)[0]
        n += 1
    return n


def _read_exactly(fd: int, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def main() -> None:
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    claims = mmap.mmap(int(sys.argv[1]), CLAIM_SLOTS) if len(sys.argv) > 1 else None
    while True:
        head = _read_exactly(rfd, 4)
        if head is None:
            return
        frame = _read_exactly(rfd, _U32.unpack(head)[0])
        if frame is None:
            return
        slot = _U32.unpack_from(frame)[0] % CLAIM_SLOTS
        if claims is not None and claims[slot] == STOLEN:
            result = bytes([NOT_CHECKED]) * _count(memoryview(frame)[4:])
        else:
            if claims is not None:
                claims[slot] = TAKEN
            result = verdicts(frame[4:])
        data = _U32.pack(len(result)) + result
        while data:
            data = data[os.write(wfd, data):]


if __name__ == "__main__":
    main()
