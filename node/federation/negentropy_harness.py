"""The negentropy conformance-test harness: our reconciler behind the reference's line protocol.

Run as `python -m node.federation.negentropy_harness`. It speaks, on stdin/stdout, the line
protocol of hoytech/negentropy's test harnesses (`test/cpp/harness.cpp`, `test/js/harness.js`),
so the reference's driver (`test/fuzz.pl`, `test/protoversion.pl`) can pit this implementation
against the C++ or JS one in either role.

Input lines (blank lines are ignored):

- `item,TIMESTAMP,IDHEX`: add an item (before `seal`);
- `seal`: sort the items and create the reconciler (`FRAMESIZELIMIT` env var: frame limit);
- `initiate`: become the initiator and print the first message;
- `msg,HEX`: process a peer message.

Output lines: `msg,HEX` (a message for the peer), and, for the initiator only, after each
processed message: every `have,IDHEX`, then every `need,IDHEX`, then either `msg,HEX` or
`done` when the initiator has nothing more to ask. A responder always answers `msg,HEX` (at
least the version byte, `msg,61`). As the reference harnesses do, a message larger than the
frame size limit is a fatal error, and so is any malformed line or message: the harness
prints the error on stderr and exits non-zero.

The line handling lives in `Harness.handle_line`, pure (a line in, lines out) so tests can
replay recorded reference transcripts without processes; only `main` touches stdio.
"""

from __future__ import annotations

import os
import sys

from node.federation.negentropy import Negentropy, VectorStorage

__all__ = ["Harness", "HarnessError", "main"]


class HarnessError(Exception):
    """A bad harness command or a frame-size violation: the conformance run fails."""


class Harness:
    """State of one harness process: the items, then the reconciler once sealed."""

    def __init__(self, frame_size_limit: int = 0) -> None:
        self.frame_size_limit = frame_size_limit
        self.storage = VectorStorage()
        self.ne: Negentropy | None = None

    def handle_line(self, line: str) -> list[str]:
        """Process one input line; return the output lines (without newlines)."""
        line = line.strip()
        if not line:
            return []
        fields = line.split(",")
        cmd = fields[0]
        if cmd == "item":
            if len(fields) != 3:
                raise HarnessError("wrong num of fields")
            self.storage.insert(int(fields[1]), bytes.fromhex(fields[2]))
            return []
        if cmd == "seal":
            self.storage.seal()
            self.ne = Negentropy(self.storage, self.frame_size_limit)
            return []
        if cmd == "initiate":
            msg = self._ne().initiate()
            self._check_frame(msg, "initiate")
            return [f"msg,{msg.hex()}"]
        if cmd == "msg":
            query = bytes.fromhex(fields[1]) if len(fields) >= 2 else b""
            return self._handle_msg(query)
        raise HarnessError(f"unknown cmd: {cmd}")

    def _handle_msg(self, query: bytes) -> list[str]:
        ne = self._ne()
        if not ne.is_initiator:
            reply = ne.reconcile_responder(query)
            self._check_frame(reply, "non-initiator")
            return [f"msg,{reply.hex()}"]
        reply_or_none, have, need = ne.reconcile_initiator(query)
        out = [f"have,{id.hex()}" for id in have]
        out += [f"need,{id.hex()}" for id in need]
        if reply_or_none is None:
            out.append("done")
        else:
            self._check_frame(reply_or_none, "initiator")
            out.append(f"msg,{reply_or_none.hex()}")
        return out

    def _ne(self) -> Negentropy:
        if self.ne is None:
            raise HarnessError("not sealed")
        return self.ne

    def _check_frame(self, msg: bytes, who: str) -> None:
        limit = self.frame_size_limit
        if limit and len(msg) > limit:
            raise HarnessError(f"frameSizeLimit exceeded: {len(msg)} > {limit}: from {who}")


def main() -> int:
    limit = int(os.environ.get("FRAMESIZELIMIT") or 0)
    harness = Harness(limit)
    out = sys.stdout
    try:
        for line in sys.stdin:
            produced = harness.handle_line(line)
            if produced:
                out.write("\n".join(produced) + "\n")
                out.flush()  # the driver waits for each reply line by line
    except Exception as e:  # noqa: BLE001 - the harness reports any failure and exits
        print(f"negentropy harness: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
