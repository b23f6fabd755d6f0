"""Bugs the campaigns found, by id: where, what, how it is pinned, and whether it is fixed.

A campaign that meets one of these counts it as a failure and names it; the regression test
that pins it lives in `tests/regressions/` (see its README). `open` bugs are in files this
package does not own: their regression tests are `xfail(strict=True)` until the fix lands, and
then the flag in `tests/regressions/index.json` goes to `"open": false`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KnownBug", "KNOWN_BUGS", "bug_of_exception"]


@dataclass(frozen=True, slots=True)
class KnownBug:
    id: str
    where: str
    summary: str
    regression: str  # the test that pins it
    open: bool  # True while the fix is not applied
    crashes: bool = False  # an uncaught exception (a poison line sinks its whole batch)


KNOWN_BUGS: dict[str, KnownBug] = {b.id: b for b in (
    KnownBug(
        "huge-integer-crash", "node/protocol/events.py `_int`",
        "an integer literal of more than 4,300 digits raises ValueError (Python's int/str "
        "conversion limit) out of `loads_strict` instead of `integer_out_of_range`: HTTP 500 on "
        "POST /api/v1/events, and the whole peer batch fails (no line of it lands)",
        "tests/test_regressions.py::test_regression[huge-integer]", open=False, crashes=True),
    KnownBug(
        "nesting-recursion-crash", "node/protocol/events.py `loads_strict` / `_validate`",
        "JSON nested a few levels below the parser's recursion limit parses, then raises "
        "RecursionError in schema validation: HTTP 500 instead of `too_deep`, and the whole "
        "peer batch fails; the depth that crashes depends on the caller's stack",
        "tests/test_regressions.py::test_regression[nesting-900-999]", open=False, crashes=True),
    KnownBug(
        "dollar-newline", "node/protocol/schema.py (pattern keyword)",
        "schema patterns end in `$`, which Python's re.search lets match before a final "
        "newline: `created_at: \"2026-02-01T09:00:00.000Z\\n\"`, `chapter: \"paris\\n\"`, "
        "ids and hashes with a trailing newline pass the schema (ECMA-262 `$`, which JSON Schema "
        "means, refuses them), so a signed event with a second spelling of its timestamp is "
        "stored here and refused by other implementations",
        "tests/test_regressions.py::test_regression[created-at-newline]", open=False),
    KnownBug(
        "surrogate-code", "node/protocol/events.py `event_from_object`",
        "a lone surrogate escape (\"\\ud800\") is refused at canonicalisation (step 8) with "
        "code `bad_number` instead of at step 2 with `not_json` (I-JSON, RFC 7493 §2.1, "
        "forbids them)",
        "tests/test_regressions.py::test_regression[lone-surrogate]", open=False),
    KnownBug(
        "version-true-code", "node/protocol/events.py `event_from_object`",
        "`\"v\": true` passes the version check (in Python `True == 1`) and is refused one step "
        "later as `schema_violation` instead of `unsupported_version`",
        "tests/test_regressions.py::test_regression[version-true]", open=False),
    KnownBug(
        "sealed-id-crash", "node/chapter/chapter_node.py `accept_sealed`",
        "a peer batch line `{\"sealed\": {\"seal\": \"\\ud800\", \"acts\": []}}` reaches "
        "SQLite with a lone surrogate as the seal id: UnicodeEncodeError out of `receive`, HTTP "
        "500, and the lines after it get no outcome (the events before it are already stored)",
        "tests/test_regressions.py::test_regression[sealed-surrogate-id]", open=False, crashes=True),
    KnownBug(
        "closes-at-instant-crash", "node/protocol/events.py `_validate`",
        "only `created_at` is checked to name a real instant; a signed proposal or feedback "
        "request whose `body.closes_at` is `2026-02-30T12:00:00.000Z` (or month 13) passes "
        "parsing and raises ValueError in admissibility: any member gets HTTP 500 from "
        "POST /api/v1/events, and a peer batch holding it fails whole, so a peer that relays "
        "one (another implementation) wedges push and pull with us for good",
        "tests/test_regressions.py::test_regression[proposal-closes-feb-30]", open=False, crashes=True),
    KnownBug(
        "outbox-over-batch-limit", "node/chapter/chapter_node.py `outbox`, node/federation/sync.py `push`",
        "the outbox batches 500 events whatever their size; 257 or more 64 KiB events waiting "
        "for a peer (gathered while it was away) make a body over the peer's 16 MiB limit: "
        "413 every time, the push cursor never moves, and because the peer loop pushes before "
        "it pulls or reconciles, that peer is never pulled from either; two nodes in this state "
        "stay partitioned for good",
        "tests/test_hardening_poison.py::test_an_outbox_of_large_events_keeps_flowing",
        open=False),
    KnownBug(
        "peer-reply-truncated", "node/federation/peer_client.py `PeerClient.call`",
        "`await resp.content.read(MAX_RESPONSE_BYTES + 1)` returns what is buffered, not the "
        "whole body: any peer reply that arrives in more than one read is cut short. A pull "
        "of 300 events (2 KB each) from a real node stored 54 and moved the checkpoint to 300: "
        "246 acknowledged events skipped by pull; large Negentropy replies and fetches are cut "
        "too (so anti-entropy fails instead of healing it), and a cut push reply fails the push",
        "tests/test_hardening_sync.py::test_a_pull_stores_every_event_the_peer_holds", open=False),
    KnownBug(
        "negentropy-session-unbounded", "node/federation/sync.py `Federation.reconcile`",
        "as initiator, every round's `have`/`need` ids are appended to lists for up to 10,000 "
        "rounds and deduplicated only at the end: a peer that answers each round with a new id "
        "list and a range still to split grew a node from 68 MiB to 1.1 GiB in 18 s (1,500 ids "
        "a round; with 1 MiB replies the cap allows some 300 million ids)",
        "tests/test_hardening_exhaustion.py::test_a_negentropy_session_that_never_ends_is_bounded",
        open=False),
    KnownBug(
        "batch-blocks-loop", "node/federation/api.py `receive_batch` (ingest on the event loop)",
        "a peer batch is ingested synchronously on the event loop: a full batch of 10,000 valid "
        "events keeps the node from answering anything (status included) for as long as it "
        "takes, about 1.1 s on the 2-core machine",
        "tests/test_hardening_exhaustion.py::test_status_answers_within_a_second_during_a_full_batch",
        open=False),
    KnownBug(
        "act-set-amplification", "node/chapter/chapter_node.py `_compute` / `record_finality` (duties)",
        "a proposal's tally reads its whole act set (every event naming it, ~10 µs each) on the "
        "event loop: for each report, each listing, and every duty round while the proposal "
        "is not final. One Connector can sign any number of distinct endorsements (a new "
        "timestamp each), and the cost grows with them: at 150,000 acts on a pending action "
        "proposal status waited up to 1.5 s (4 late answers in 10 s), the proposal's report "
        "took 2.9 s and the node's RSS reached 330 MiB; a node restarted over 400,000 such "
        "acts took 6 s to answer",
        "tests/test_act_reduction.py::test_one_connectors_thousand_endorsements_leave_sqlite_as_two "
        "(fixed: a proposal without seals is tallied from each author's first and last act per "
        "type, scope and registry segment, `Store.essential_acts`; campaign 6 measures it)",
        open=False),
    KnownBug(
        "verifier-shared-after-fork", "node/ingest.py `SignatureVerifier` (worker pipes)",
        "a process forked after its signature workers started (campaign 9's process pool; "
        "any pre-fork server) kept using the parent's worker pipes: both processes read "
        "replies meant for the other, so verdicts could pair with the wrong signatures; "
        "campaign 9 saw it as IndexError (a reply shorter than the chunk) on one seed in "
        "10,500 (20265523, which holds when replayed alone). Fixed: a verifier notices it "
        "was forked and starts its own workers; a reply whose length does not match its "
        "chunk retires the worker and its chunks are checked locally",
        "tests/test_fast_paths.py::test_a_forked_process_does_not_share_its_parents_workers",
        open=False, crashes=True),
    KnownBug(
        "backoff-after-heal", "node/federation/sync.py `_peer_loop` (backoff)",
        "a peer that failed for a while is retried only when its exponential backoff (up to "
        "60 s, with jitter) runs out, even after that peer is back and has itself reached us: "
        "after 60 s partitions of 5 nodes, one heal in three took 13.8 s, then 15.5 s in the "
        "next run, to converge (bar: 2 × pull "
        "interval + 10 s = 11 s); the other heals took 1.7 to 6.6 s. Fixed first by ending a "
        "backoff when the peer reaches us; campaign 8 then still saw a heal take 16.1 s "
        "(2026-12-01): when both sides of a cut back off from each other, neither reaches the "
        "other until one's wait (up to the 60 s cap) runs out. The cap is now 10 s",
        "campaign 8 of `python -m hardening`; tests/test_sync_backoff.py pins both mechanisms",
        open=False),
    KnownBug(
        "listen-backlog", "node/app.py `serve` (aiohttp TCPSite, backlog 128)",
        "300 connections opened at once overflow the listen backlog of 128 for a moment: the "
        "kernel drops a SYN and a client that connects then (a status probe, a peer) waits "
        "for its retransmission, about 1.03 s, in some runs; a larger backlog "
        "(`web.TCPSite(..., backlog=1024)`, bounded by net.core.somaxconn) absorbs the burst",
        "campaign 6 of `python -m hardening` (it shows in some runs only: a race with the "
        "accept loop)", open=False),
    KnownBug(
        "batch-steps-partial", "node/chapter/chapter_node.py `receive_steps` (commit ed85d24)",
        "the first version of the pausing peer-batch ingest stored what it had admitted at each "
        "pause: kill -9 during a 10,000-event batch left 499, 749 and 7,749 of its events "
        "(prefixes of 250-line steps) in 3 of 20 loops; fixed in a8eb088 (one transaction "
        "again), 0 partial batches in the 70 loops run since",
        "tests/test_hardening_crashes.py (3 loops; a kill lands mid-batch in most runs) and "
        "campaign 7", open=False),
    # found by campaign 4 (schemathesis) and its follow-ups; fixed in node/federation/
    KnownBug(
        "fetch-id-500", "node/federation/api.py `fetch`",
        "POST /federation/v1/fetch with `{\"ids\": [\"\\ud800\"]}` reached SQLite with a lone "
        "surrogate: HTTP 500; ids that are not 64 lowercase hex were looked up instead of refused",
        "tests/test_hardening_api.py::test_fetch_refuses_ids_that_are_not_event_ids",
        open=False, crashes=True),
    KnownBug(
        "405-without-allow", "node/federation/http_errors.py `error_middleware`",
        "405 answers dropped the `Allow` header RFC 9110 §15.5.6 requires",
        "tests/test_hardening_api.py::test_a_405_lists_the_allowed_methods", open=False),
    KnownBug(
        "state-unchecked", "node/federation/api.py `list_proposals`",
        "GET /api/v1/proposals?state=<anything> answered 200 with an empty list instead of "
        "400 `bad_query` (the document enumerates the states)",
        "tests/test_hardening_api.py::test_an_unknown_state_is_refused", open=False),
    KnownBug(
        "lenient-integers", "node/federation/api.py `_int_param`",
        "query integers went through int(): `after=٢` (a Devanagari two), `+5`, ` 5`, `5_0` "
        "were taken as numbers; a schema-valid `after` over 2^62 was refused rather than "
        "meaning \"after everything\"",
        "tests/test_hardening_api.py::test_query_integers_are_plain_ascii_digits", open=False),
    KnownBug(
        "effect-retroactive-admission",
        "node/chapter/chapter_node.py `_admit` (role checks at created_at under a node's provisional "
        "registry); PROTOCOL §4/§6",
        "an event is judged once, with the registry the node holds then: a node that does "
        "not (yet) hold an adopted `remove_connector` proposal accepts an act (or a vote "
        "proposal) its removed Connector dates after the removal's closes_at, and keeps it; "
        "every node that holds the removal refuses it (`not_connector`, `not_vote_author`) "
        "whenever it is offered; likewise a second removal of the same Connector, stale for "
        "the others (`effect_not_connector`). Found by campaign 9 (about 1 seed in 400). "
        "After the heal the "
        "event sets never converge, a seal that lists the act names an act the others can "
        "never fetch (those proposals become final only at the seal timeout), and exports "
        "differ. Tallies agree (the act's author is no Connector at the close either way). "
        "Fixed by derived admission (docs/protocol.md §5): a relayed event failing only a "
        "check that reads derived state is kept and exchanged, and every read (timeline, "
        "tally, seal, listing, audit) judges it again against the registry the whole set gives",
        "tests/test_hardening_simulation.py::"
        "test_an_act_taken_before_its_authors_removal_was_known_reaches_every_node",
        open=False),
    KnownBug(
        "unsubscribe-token-crash", "node/notices/mail.py `check_token`",
        "an unsubscribe link whose token holds a non-ASCII character (`token=%C3%A9`) made "
        "`hmac.compare_digest` raise TypeError: HTTP 500 on GET and POST /mail/unsubscribe "
        "instead of the 401 page. Found by campaign 4 (2026-12-05); tokens are now compared "
        "as bytes",
        "tests/test_mail.py::"
        "test_unsubscribe_by_the_link_stops_the_next_notice_and_a_forged_one_is_refused",
        open=False),
    KnownBug(
        "page-query-undocumented", "docs/openapi.yaml (`lang`, the list page's `kind`)",
        "the pages answer an unknown `lang` and an empty `kind` as if they were absent (the "
        "cookie or Accept-Language picks the language; every kind is listed), which is kinder "
        "to a hand-edited address than an error page, but the document enumerated both. Found "
        "by campaign 4 (2026-12-05); the document now says what the pages do",
        "campaign 4 of `python -m hardening`", open=False),
)}


def _frames(exc: BaseException) -> list:
    import traceback

    return list(traceback.extract_tb(exc.__traceback__))


def bug_of_exception(exc: BaseException) -> str | None:
    """The known bug an unexpected exception is an instance of, if any (so that fuzzing goes on
    past a bug already pinned, and counts it)."""
    text = str(exc)
    if isinstance(exc, ValueError) and "integer string conversion" in text:
        return "huge-integer-crash"
    if isinstance(exc, RecursionError):
        return "nesting-recursion-crash"
    if isinstance(exc, ValueError) and "parse_ms" in [f.name for f in _frames(exc)]:
        return "closes-at-instant-crash"
    if isinstance(exc, UnicodeEncodeError) and "surrogates not allowed" in text:
        frames = [f.name for f in _frames(exc)]
        if "accept_sealed" in frames:
            return "sealed-id-crash"
    return None
