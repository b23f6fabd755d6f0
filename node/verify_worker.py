"""A signature-checking worker process: Ed25519 verdicts for frames read on stdin.

Started by `node.ingest.SignatureVerifier` (`python -m node.verify_worker`); it imports only
PyNaCl, so it stays small. It exits when its stdin closes, i.e. when its parent goes away.

Wire format (little-endian), one request frame then one reply frame, in order:
    request: u32 size, then records of: u32 message length, 32-byte public key,
             64-byte signature, message
    reply:   u32 count, then one byte per record: 1 the signature verifies, 0 it does not
"""

from __future__ import annotations

import os
import struct
import sys

__all__ = ["main", "encode_request", "verdicts"]

_U32 = struct.Struct("<I")


def encode_request(records: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """(public key, signature, message) records as one request frame."""
    body = b"".join(_U32.pack(len(m)) + pk + sig + m for pk, sig, m in records)
    return _U32.pack(len(body)) + body


def verdicts(frame: bytes) -> bytes:
    """One verdict byte per record of a request body (the frame without its size)."""
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
    while True:
        head = _read_exactly(rfd, 4)
        if head is None:
            return
        frame = _read_exactly(rfd, _U32.unpack(head)[0])
        if frame is None:
            return
        result = verdicts(frame)
        data = _U32.pack(len(result)) + result
        while data:
            data = data[os.write(wfd, data):]


if __name__ == "__main__":
    main()
