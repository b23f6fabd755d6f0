"""The prose of bench/RESULTS.md: what bounds each figure, what changed, what is not done.

Kept apart from the figures: the table above it is rewritten by every run, this text only
when the code it describes changes. Figures quoted here say where and when they were taken.
"""

NOTES = """
## How to read the table

- **limit (same run)** is measured by this run, on this machine, minutes before the figure:
  `limits` runs first. The machine is shared (other sessions run tests and fuzzers on the
  same two cores); the header says how much of the CPU others used during the run. Parallel
  figures (2-core verify, anything with worker processes) suffer most from that.
- Ratios are figure ÷ limit. Targets are issue 6's.

## What bounds each figure

**ingest (peer batches).** Per event the node does, in this order: strict JSON, envelope and
body schema, canonical form, federation, signature (§2.1), then admission (§4-§6) and the store.
`ChapterNode.receive` as it is in `node/service.py` runs all of it on one thread, one event
after another: the ceiling is one core shared by Python (~70 µs/event: store lookups per event,
the registry timeline re-read per event, strptime) and Ed25519 (~42 µs/event). The rows
"of which …" show the state-independent half alone: with `node.ingest.check_lines` the
signatures are verified on worker processes while the calling thread parses the next lines.

Measured on an idle machine, 2026-11-25 05:07 UTC, `python -m bench --only ingest` (100,000
events; others used 3-4 % of the CPU): this tree 7,716 events/s in-process and 7,331/s over
HTTP, 15.8 % / 15.0 % of 48,900 verifications/s; a copy of this tree with the proposed
`receive` (node/ingest.py's `check_lines`, the registry timeline read once per batch, the
proposals an act names looked up once per batch) and the proposed `parse_ms` applied:
14,349/s in-process and 13,073/s over HTTP, 29.3 % / 26.7 % of 49,000/s; its §2.1 half alone
runs at 26,100/s (53 %). Before issue 6 the same path did ~2,700 events/s (20,000 events).
Main-process CPU per event (20,000 events): 361 µs before issue 6, 116 µs with the hot-path
changes below, 48 µs with the proposed `receive`, 38 µs with the proposed `parse_ms` too.

What is left between 29 % and 45 % is mostly SQLite: inserting into the events table costs
14 µs/event at 25,000 rows and grows to ~25-30 µs/event (marginal) at 100,000, because the
unique index on the random `id` dirties about one page per row in every batch, whatever
`synchronous` says (`FULL` 18 µs, `NORMAL` 15.5 µs, `OFF` 9.7 µs per row at 20,000 rows);
at 20,000 events the proposed path does 16,500/s (35 %).

Threads or processes for the signatures: PyNaCl does release the GIL (two threads verify
~1.9× one: the `limit` rows), and for parse + verify alone a 2-thread pool does about as
well as 2 worker processes (22,000-23,700 vs 24,300 events/s, idle machine). In `receive`,
where the calling thread also admits and stores, threads lose: a verifier thread coming back
from libsodium needs the GIL, which the busy calling thread holds for up to the 5 ms switch
interval. Measured on the proposed `receive`, 20,000 events, idle machine, two rounds:
2 worker processes 16,600 / 17,600 events/s, 2 threads 14,100 / 13,600, 3 threads
15,000 / 12,300, all on the calling thread 12,400 / 12,400. Hence `node/verify_worker.py`:
a small process (only PyNaCl imported) per core, fed length-prefixed frames on a pipe. A
batch under 32 lines is verified on the calling thread.

**client ingest.** One event per request, one SQLite transaction per event, and with
`synchronous=FULL` one fsync per event: in-process, `ChapterNode.submit` does 1,250 events/s
with `FULL` and 5,500/s with `NORMAL` (same run of /tmp measurements, 2026-11-25). Sixteen
clients do not help: requests are handled one at a time on the event loop, each with its own
commit. What would: committing the events of concurrent requests together (group commit, see
the proposals in the issue thread), or `synchronous=NORMAL` (durable across a crash of the
process, not across a power cut).

**tally.** Pure Python over events already in memory (`bench/tally.py`): linear; the
µs per Connector grow with the bare pass over the events once they outgrow the CPU caches.

**catch-up.** A new node gets every event twice (its pull of the peer's feed and the peer's
push of its outbox); the second copy is a cheap duplicate. Bounded by ingest, plus HTTP, plus
the peer serving its feed on the same two cores.

**anti-entropy.** Negentropy v1, byte-compatible with the reference (its vectors replay
byte for byte). `Federation.reconcile` opens with one fingerprint over the whole set
(`Negentropy.initiate_whole_set`, 20 B; a reference responder answers one byte when the sets
are equal, and splits the range itself when they are not), so two equal nodes, the steady
state, reconcile in 21 B and one round trip. The price is paid only when the sets differ:
the first round learns nothing but "different", so d > 0 takes one more round trip, and at
N = 100,000 the leaf id lists fall to the initiator, which makes the responder answer with
its own: 1.5-1.9 × the bytes of the reference's 16-bucket opening (the table's detail rows
give those beside the figures; at N = 1,000,000 the whole-set opening is the cheaper one).
d = 10 stays inside its target. Per differing id at d ≤ 10 the cost is ~1-2 KB: a leaf range
(< 32 items) is sent as a list of ids (32 B each). Recorded against the reference C++
responder: tests/vectors/negentropy/wholeset-*.

**convergence.** 20 real node processes on 2 cores, 1,000 action proposals posted by 8
clients at random nodes. With `peers = 3` (node/config.py; docs/protocol.md §9) each node
pushes, pulls and reconciles with 3 chapters drawn by rendezvous hashing, and relays what it
did not receive from a peer, so an event floods the 3-out graph in about its diameter (3
hops for 20 nodes). Each event costs 3 signed pushes instead of 19, so the injection runs
about 4 × faster and the cluster is far less CPU-bound; a new event wakes the push loops at
once, so a hop costs milliseconds, not the pull interval. The full mesh is run beside it.
What bounds both is the CPU spent on signed requests while events arrive.

**scale.** The real sync, ingest and peer endpoint code over the in-memory network
(`node/devsim.py`, `node/federation/local_network.py`), in one process on one core, k = 3.
A round is a synchronous hop (`hop_round`: each node's feed and outbox are held at what it
held when the round began), so the rounds are the flood's: at every size they equal the
breadth-first distance over the drawn 3-out graph from the events' first nodes to the
farthest node ("search predicts"), against log₃ N beside it. Coverage grows about 5 × per
round, since each node has about 2k = 6 links (the k it chose and about k that chose it); a
node receives about 5.4 copies of each event, under those 6 links; it sends 4-5.5 requests
per round (k feed polls, plus pushes when it has something new). Wall time is mostly
ingest: every copy is parsed and its signature verified. The peer draws are N SHA-256 ranks
per node, O(N²) for the whole simulation (most of the build at 10,000 nodes), but a few ms
once per registry change on a real node. Peak RSS is ~370-430 KiB per simulated node (its
in-memory SQLite store and Python objects); nodes holding the same registry events share
one immutable Timeline, and a node-key index answers peer look-ups in O(1).

**memory.** A node at rest holding 1,000,000 events is ~70 MiB. The Negentropy item set
(`VectorStorage`) is one buffer of 40-byte records (timestamp, id) sorted as the spec orders
them, with the id sums kept packed every 16 items and every 64th record sampled for a C
binary search: ~43 MB at 1,000,000 events (it was ~300 MiB of Python tuples). It is built
once, streamed from SQLite in order (~1.5 s at 1,000,000 events, ~1 s of it SQLite's sort,
on the event loop once per process), then events stored since are merged in when the next
reconciliation needs it instead of rebuilding. The peak while serving and syncing is that
set, the changes feed and the fetches.

**startup.** `chapter-node run` does not read the events to start: it answers in well under a
second on 1,000,000 events; `/api/v1/status` counts them (a full scan) and answers a bit later.

## What issue 6 changed on the hot path (node/events.py, node/schema.py, node/store.py)

- Schemas: `jsonschema-rs` compiles the same `schemas/*.json` (~100× faster than
  `jsonschema`: 308 µs → 3 µs per event). Its "valid" is taken only where the two regex
  dialects cannot differ; every refusal, and every instance holding a character where
  they can (`\\n` before `$`, U+001C-U+001F, U+0085, U+FEFF, …), is decided by `jsonschema`,
  so verdicts and messages are the reference's (`tests/test_schema_fast.py` replays 3,337
  schema cases recorded from the test suite through both).
- Canonical form: the C JSON encoder where it provably writes RFC 8785 (integers in range,
  no floats, BMP keys), `rfc8785` elsewhere; text that is already plain canonical (what peers
  and the CLI send) is recognised by one orjson round trip and used as the signed bytes as
  is; the signing input is cut out of it instead of canonicalising a second time.
- Strict JSON: orjson for plain canonical text (proved equal to `loads_strict`'s value);
  everything else still goes through `loads_strict`, so every refusal code is unchanged.
- base64url, `created_at`: decoded/parsed once per event instead of twice.
- Store: one `executemany` per batch (row by row only when a row was already held), stored
  `created_ms` passed to `event_from_stored` instead of re-parsing, `effect_proposal_ids`
  reads the proposals through the (type, created_at) index instead of scanning every event.
- Signatures on worker processes (`node/ingest.py`, `node/verify_worker.py`), for the
  proposed `receive`.
- Checked for identical behaviour: the full suite, `tests/test_fast_paths.py` (canonical vs
  rfc8785, fast vs strict JSON, `check_lines` vs `parse_event`), and a differential run of
  100,000+ mutated events through the old and new `parse_event`: same id, bytes, body, or
  same code *and* message.

## Not done yet

- **memory while serving clients' proposal reports** with huge act sets: a proposal without
  seals is tallied from each author's first and last acts only (`Store.essential_acts`), but
  a sealed one still reads its whole act set for each report; not measured here.
"""
