"""Record negentropy conformance transcripts from any harness speaking the reference line protocol.

Usage (from anywhere):

    python make_vectors.py OUTDIR CLIENT_CMD [SERVER_CMD]

CLIENT_CMD / SERVER_CMD are shell commands starting a harness process (hoytech/negentropy's
`test/cpp/harness`, `node test/js/harness.js`, or `python -m node.federation.negentropy_harness`);
SERVER_CMD defaults to CLIENT_CMD. For every scenario below it writes `NAME.client.in`,
`NAME.client.out`, `NAME.server.in` and `NAME.server.out`: exactly the lines each process read
and printed, driven the way the reference driver `test/fuzz.pl` drives them (items, `seal`,
`initiate` to the client, then every `msg` forwarded to the other side until the client prints
`done`). The `wholeset-*` scenarios drive SERVER_CMD with our own initiator opening with one
whole-set fingerprint (`Negentropy.initiate_whole_set`, run from the repository so `node` is
importable) and record the server's side only. `frame_size_limits.json` records the FRAMESIZELIMIT each process ran with. Item sets
come from `random.Random(seed)`, so the inputs are the same on every run.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BASE_TS = 1_700_000_000


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    shared: int  # items both sides hold
    client_only: int
    server_only: int
    ts_spread: int  # timestamps in BASE_TS + [0, ts_spread): small spreads force id prefixes
    client_limit: int = 0
    server_limit: int = 0


SCENARIOS = [
    Scenario("tiny", seed=1, shared=2, client_only=1, server_only=2, ts_spread=5),
    Scenario("empty-client", seed=2, shared=0, client_only=0, server_only=40, ts_spread=1000),
    Scenario("split", seed=3, shared=600, client_only=6, server_only=5, ts_spread=40),
    Scenario(
        "framelimit",
        seed=4,
        shared=150,
        client_only=180,
        server_only=180,
        ts_spread=300,
        client_limit=4096,
        server_limit=4096,
    ),
    Scenario(
        "framelimit-idlist",
        seed=5,
        shared=10,
        client_only=0,
        server_only=350,
        ts_spread=300,
        client_limit=0,
        server_limit=4096,
    ),
]


def items(s: Scenario) -> tuple[list[str], list[str]]:
    rng = random.Random(s.seed)

    def line() -> str:
        return f"item,{BASE_TS + rng.randrange(s.ts_spread)},{rng.randbytes(32).hex()}"

    shared = [line() for _ in range(s.shared)]
    client = shared + [line() for _ in range(s.client_only)]
    server = shared + [line() for _ in range(s.server_only)]
    rng.shuffle(client)
    rng.shuffle(server)
    return client, server


class Side:
    def __init__(self, cmd: str, limit: int) -> None:
        self.limit = limit
        env = dict(os.environ)
        env.pop("FRAMESIZELIMIT", None)
        if limit:
            env["FRAMESIZELIMIT"] = str(limit)
        self.proc = subprocess.Popen(
            shlex.split(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.inp: list[str] = []
        self.out: list[str] = []

    def send(self, line: str) -> None:
        self.inp.append(line)
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def recv(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("harness exited early")
        line = line.rstrip("\n")
        self.out.append(line)
        return line

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        if self.proc.wait(timeout=60) != 0:
            raise RuntimeError("harness failed")


def run(s: Scenario, client_cmd: str, server_cmd: str, outdir: Path) -> None:
    client_items, server_items = items(s)
    client, server = Side(client_cmd, s.client_limit), Side(server_cmd, s.server_limit)
    for line in client_items:
        client.send(line)
    for line in server_items:
        server.send(line)
    client.send("seal")
    server.send("seal")
    client.send("initiate")
    while True:
        line = client.recv()
        if line.startswith(("have,", "need,")):
            continue
        if line == "done":
            break
        server.send(line)  # msg,HEX
        client.send(server.recv())
    client.close()
    server.close()
    write(outdir, s.name, client, server)


# Our initiator opening with one whole-set fingerprint (`initiate_whole_set`, what sync.py
# sends) against SERVER_CMD: only the server's side is a harness, so only it is recorded.
WHOLE_SET_SCENARIOS = [
    Scenario("wholeset-equal", seed=6, shared=500, client_only=0, server_only=0, ts_spread=300),
    Scenario("wholeset-split", seed=3, shared=600, client_only=6, server_only=5, ts_spread=40),
    Scenario(
        "wholeset-framelimit",
        seed=4,
        shared=150,
        client_only=180,
        server_only=180,
        ts_spread=300,
        client_limit=4096,
        server_limit=4096,
    ),
]


def run_whole_set(s: Scenario, server_cmd: str, outdir: Path) -> None:
    from node.federation.negentropy import Negentropy, VectorStorage

    client_items, server_items = items(s)
    storage = VectorStorage()
    for line in client_items:
        _, ts, id_hex = line.split(",")
        storage.insert(int(ts), bytes.fromhex(id_hex))
    storage.seal()
    client = Negentropy(storage, s.client_limit)
    server = Side(server_cmd, s.server_limit)
    for line in server_items:
        server.send(line)
    server.send("seal")
    have: set[bytes] = set()
    need: set[bytes] = set()
    msg: bytes | None = client.initiate_whole_set()
    while msg is not None:
        server.send(f"msg,{msg.hex()}")
        reply = server.recv()
        if not reply.startswith("msg,"):
            raise RuntimeError(f"unexpected server line {reply!r}")
        msg, h, n = client.reconcile_initiator(bytes.fromhex(reply[4:]))
        have.update(h)
        need.update(n)
    server.close()
    ours = {bytes.fromhex(line.split(",")[2]) for line in client_items}
    theirs = {bytes.fromhex(line.split(",")[2]) for line in server_items}
    if have != ours - theirs or need != theirs - ours:
        raise RuntimeError(f"{s.name}: the whole-set opening did not find the difference")
    write(outdir, s.name, None, server)


def run_protoversion(server_cmd: str, outdir: Path) -> None:
    """Mirror of the reference's test/protoversion.pl: a v2 message gets the 0x61 reply."""
    server = Side(server_cmd, 0)
    server.send("item,12345," + "ee" * 32)
    server.send("seal")
    for msg in ("msg,62aabbccddeeff", "msg,6100000200"):
        server.send(msg)
        server.recv()
    server.close()
    write(outdir, "protoversion", None, server)


LIMITS: dict[str, int] = {}


def write(outdir: Path, name: str, client: Side | None, server: Side) -> None:
    for role, side in (("client", client), ("server", server)):
        if side is None:
            continue
        LIMITS[f"{name}.{role}"] = side.limit
        (outdir / f"{name}.{role}.in").write_text("".join(x + "\n" for x in side.inp))
        (outdir / f"{name}.{role}.out").write_text("".join(x + "\n" for x in side.out))


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    outdir = Path(argv[1])
    client_cmd = argv[2]
    server_cmd = argv[3] if len(argv) == 4 else client_cmd
    outdir.mkdir(parents=True, exist_ok=True)
    for s in SCENARIOS:
        run(s, client_cmd, server_cmd, outdir)
    run_protoversion(server_cmd, outdir)
    for s in WHOLE_SET_SCENARIOS:
        run_whole_set(s, server_cmd, outdir)
    text = json.dumps(dict(sorted(LIMITS.items())), indent=2) + "\n"
    (outdir / "frame_size_limits.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
