"""The fast paths of ingest give exactly what the reference paths give.

- `canonical()` writes RFC 8785 with the C JSON encoder where that provably equals JCS and
  with `rfc8785` elsewhere: byte-equal to `rfc8785.dumps` on any JSON value.
- `load_event_json()` recognises plain canonical text and parses it fast: the same value as
  `loads_strict`, or the same refusal code, on any bytes.
- `precheck_event()` + `verified()` (and `node.ingest.check_lines` with worker processes)
  accept and refuse as `parse_event` does, code and message alike.
"""

from __future__ import annotations

import json
import os

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ingest import PendingEvent, SealedLine, SignatureVerifier, check_lines
from node.protocol.errors import ChapterNodeError, InvalidEvent
from node.protocol.events import (
    UnverifiedEvent,
    canonical,
    event_from_object,
    load_event_json,
    loads_strict,
    parse_event,
    precheck_event,
    sign_event,
)

from .conftest import person_key

FED = "f" * 64

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec=None)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(codec=None), max_size=6), inner, max_size=4),
    max_leaves=24,
)


def _outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except ChapterNodeError as e:
        return ("refused", e.code)
    except ValueError as e:  # rfc8785.CanonicalizationError; UnicodeEncodeError (a key)
        return ("refused", type(e).__name__)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_canonical_equals_rfc8785(value: object) -> None:
    assert _outcome(canonical, value) == _outcome(rfc8785.dumps, value)


def test_canonical_orders_keys_by_utf16_and_refuses_what_jcs_refuses() -> None:
    value = {"\ue000": 1, "\U0001f600": 2, "a": [1.5, 1e21, -0.0, 2**53 - 1]}
    assert canonical(value) == rfc8785.dumps(value)
    for bad in ({"x": 2**53}, "\ud800", {"k": float("inf")}):
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(bad)


def _vote(**over: object) -> bytes:
    ev = sign_event(federation=FED, type="vote", chapter="paris",
                    created_at="2026-11-24T10:00:00.000Z",
                    body={"proposal": "a" * 64, "choice": "yes"}, signing_key=person_key("amelie"))
    obj = ev.to_json()
    obj.update(over)
    return canonical(obj)


def _same_as_strict(data: bytes) -> None:
    fast = _outcome(lambda d: load_event_json(d)[0], data)
    assert fast == _outcome(loads_strict, data)
    if fast[0] == "ok":
        obj, text = load_event_json(data)
        if text is not None:  # only ever the input itself, and only when it is canonical
            assert text == data == canonical(obj)


@settings(max_examples=800, deadline=None)
@given(st.data())
def test_load_event_json_equals_loads_strict_on_mutated_events(data: st.DataObject) -> None:
    raw = bytearray(_vote())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[pos:pos] = data.draw(st.sampled_from(
                [b" ", b"\\n", b'"v":1,', b"-0", b"1.0", b"9007199254740993", b"\\u0000",
                 b'"x"', b"{", b"[", b"]", b"}", b",", b"\xc3\xa9", b"\xff", b"NaN", b"1e400"]))
        else:
            del raw[pos]
    _same_as_strict(bytes(raw))


def test_load_event_json_takes_the_fast_path_only_for_plain_canonical_text() -> None:
    pytest.importorskip("orjson")
    raw = _vote()
    assert load_event_json(raw)[1] == raw
    doubled = raw.replace(b'"v":1}', b'"v":1,"v":1}')
    for variant, code in [
        (raw.replace(b'"v":1', b'"v":1.0'), None),  # a float: strict path, same value
        (raw.replace(b":", b": ", 1), None),  # white space: not canonical
        (doubled, "duplicate_key"),
        (raw.replace(b'"v":1', b'"v":-0'), "bad_number"),
        (raw.replace(b'"v":1', b'"v":9007199254740992'), "integer_out_of_range"),
    ]:
        _same_as_strict(variant)
        if code is None:
            assert load_event_json(variant)[1] is None
        else:
            with pytest.raises(InvalidEvent) as info:
                load_event_json(variant)
            assert info.value.code == code


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "federation", "type", "chapter", "author",
                                        "created_at", "body", "sig", "x"]), json_values))
def test_parse_event_fast_and_strict_paths_agree(obj: dict) -> None:
    base = json.loads(_vote())
    mixed = {**base, **obj}
    for text in (canonical(mixed) if _outcome(canonical, mixed)[0] == "ok" else None,
                 json.dumps(mixed).encode()):
        if text is None:
            continue
        fast = _outcome(parse_event, text, federation=FED)
        reference = _outcome(lambda t: event_from_object(loads_strict(t), federation=FED), text)
        assert fast == reference


def _batch() -> list[bytes]:
    good = [sign_event(federation=FED, type="comment", chapter="paris",
                       created_at=f"2026-11-24T10:00:{i:02d}.000Z",
                       body={"proposal": "a" * 64, "text": f"point {i}"},
                       signing_key=person_key("amelie")).canonical for i in range(50)]
    forged = good[3].replace(b"point 3", b"point 9")
    wrong_fed = _vote(federation="e" * 64)
    return [*good[:10], forged, b"{not json", wrong_fed, b" " * 300_000,
            b'{"sealed":{"seal":"' + b"b" * 64 + b'","acts":[]}}', *good[10:]]


@pytest.mark.parametrize("workers, backlog, copies", [(0, None, 1), (2, None, 1), (1, 64, 6)])
def test_check_lines_judges_each_line_as_the_sequential_path(
        workers: int, backlog: int | None, copies: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """(1, 64, 6): a worker takes 64 signatures ahead, the rest are kept for the calling
    thread or handed to the worker when it has room: every verdict is still the line's own."""
    lines = _batch() * copies
    sequential = [("refused", "too_large") if len(line) > 262_144 else
                  _outcome(lambda t: parse_event(t, federation=FED), line) for line in lines]
    verifier = SignatureVerifier(workers, backlog=backlog)
    here = []  # signatures the calling thread checked itself
    checked_here = UnverifiedEvent.signature_ok
    monkeypatch.setattr(UnverifiedEvent, "signature_ok",
                        lambda self: here.append(1) or checked_here(self))
    try:
        held_id = parse_event(lines[0], federation=FED).id
        here.clear()
        results = check_lines(lines, federation=FED, verifier=verifier,
                              held=lambda ids: {i for i in ids if i == held_id})
        assert len(results) == len(lines)
        for line, got, expected in zip(lines, results, sequential):
            if isinstance(got, SealedLine):
                assert got.value == json.loads(line)["sealed"]
                continue
            if isinstance(got, ChapterNodeError):
                assert ("refused", got.code) == expected
            else:
                assert isinstance(got, PendingEvent)
                assert _outcome(got.event) == expected
                assert got.held == (got.id == held_id)
        if backlog is not None:
            verifier.rebalance()
            assert not verifier._kept  # every kept chunk was claimed or handed over
            assert 0 < len(here) < len(lines)  # both the worker and the caller took some
    finally:
        verifier.close()


def test_the_caller_takes_back_what_the_worker_has_not_started(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for the oldest chunk, the calling thread checks the newest ones the worker has
    not started; the worker skips those. Each verdict is still its own signature's, and each
    signature is checked once, by one of the two, but for a race in the same instant."""
    good = [sign_event(federation=FED, type="comment", chapter="paris",
                       created_at=f"2026-11-24T10:{i // 60:02d}:{i % 60:02d}.000Z",
                       body={"proposal": "a" * 64, "text": f"point {i}"},
                       signing_key=person_key("amelie")).canonical for i in range(640)]
    forged = good[-1].replace(b"point 639", b"point 0")  # in the newest chunk
    unverified = [precheck_event(line, federation=FED) for line in good[:-1]]
    unverified.append(precheck_event(forged, federation=FED))
    here = []
    checked_here = UnverifiedEvent.signature_ok
    monkeypatch.setattr(UnverifiedEvent, "signature_ok",
                        lambda self: here.append(1) or checked_here(self))
    verifier = SignatureVerifier(1)
    try:
        tickets = [verifier.submit(unverified[i:i + 64]) for i in range(0, 640, 64)]
        assert not verifier._kept  # all of it fits the worker's pipe
        verdicts = [v for ticket in tickets for v in ticket.result()]
        assert verdicts == [True] * 639 + [False]
        assert 0 < len(here) < 640  # both checked some
        verifier.rebalance()
        while verifier._pool[0].waiting:  # the worker's replies for what it skipped
            verifier._pool[0].wait_reply()
        assert verifier._pool[0].alive  # its replies stayed in step with ours
        assert len(here) <= 640 - 64  # it checked at least the chunk the caller waited for
    finally:
        verifier.close()


def test_a_worker_skips_a_chunk_claimed_by_its_parent(tmp_path) -> None:
    """The claims file: a chunk marked STOLEN is answered 'not checked'; the next one is
    marked TAKEN and checked."""
    import mmap
    import struct
    import subprocess
    import sys

    from node.ingest import worker as vw

    line = _batch()[0]
    event = precheck_event(line, federation=FED)
    record = (event.author_key, event.signature, event.message)
    bad = (event.author_key, bytes(64), event.message)
    with open(tmp_path / "claims", "w+b") as f:
        f.truncate(vw.CLAIM_SLOTS)
        claims = mmap.mmap(f.fileno(), vw.CLAIM_SLOTS)
        claims[7] = vw.STOLEN
        proc = subprocess.Popen([sys.executable, vw.__file__, str(f.fileno())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                pass_fds=(f.fileno(),))
        out, _ = proc.communicate(vw.encode_request(7, [record, record])
                                  + vw.encode_request(8, [record, bad]), timeout=30)
        replies = []
        while out:
            (count,) = struct.unpack_from("<I", out)
            replies.append(out[4:4 + count])
            out = out[4 + count:]
        assert replies == [bytes([vw.NOT_CHECKED] * 2), bytes([1, 0])]
        assert claims[8] == vw.TAKEN and claims[7] == vw.STOLEN
        claims.close()


def test_a_dead_worker_costs_nothing_but_time() -> None:
    lines = _batch()
    verifier = SignatureVerifier(1)
    try:
        check_lines(lines, federation=FED, verifier=verifier)  # starts the worker
        verifier._pool[0].proc.kill()
        verifier._pool[0].proc.wait()
        results = check_lines(lines, federation=FED, verifier=verifier)
        codes = [r.code if isinstance(r, ChapterNodeError) else
                 _outcome(r.event)[0] if isinstance(r, PendingEvent) else "sealed"
                 for r in results]
        assert codes.count("ok") == 50 and "bad_signature" not in codes
        assert _outcome(results[10].event) == ("refused", "bad_signature")
    finally:
        verifier.close()


def _verdicts(verifier: SignatureVerifier) -> list[tuple]:
    return [_outcome(r.event) for r in check_lines(_batch(), federation=FED, verifier=verifier)
            if isinstance(r, PendingEvent)]


def test_a_forked_process_does_not_share_its_parents_workers() -> None:
    """A process forked after the workers started (a process pool, a pre-fork server) must
    not read the parent's workers' replies: verdicts would pair with the wrong signatures."""
    verifier = SignatureVerifier(2)
    try:
        expected = _verdicts(verifier)  # starts the workers, in the parent
        assert expected.count(("refused", "bad_signature")) == 1
        pid = os.fork()
        if pid == 0:  # the child: both processes now verify at the same time
            try:
                ok = all(_verdicts(verifier) == expected for _ in range(20))
            except BaseException:  # noqa: BLE001 - any failure is the child's answer
                ok = False
            os._exit(0 if ok else 1)
        parent_ok = all(_verdicts(verifier) == expected for _ in range(20))
        _, status = os.waitpid(pid, 0)
        assert parent_ok
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        verifier.close()


def _parse_ms_reference(text: str) -> int:
    """PROTOCOL §1 timestamps as `node.protocol.times` first read them, with `strptime`."""
    import datetime as dt

    from node.protocol.times import TIMESTAMP_RE

    if not TIMESTAMP_RE.match(text):
        raise ValueError(text)
    moment = dt.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + int(text[20:23])


_digits = st.sampled_from("0123456789") | st.sampled_from("٠١٢٣٤٥٦٧٨٩")


@settings(max_examples=1500, deadline=None)
@given(st.tuples(st.sampled_from(["0000", "0001", "1970", "2000", "2026", "2100", "9999"])
                 | st.text(_digits, min_size=4, max_size=4),
                 st.text(_digits, min_size=2, max_size=2), st.text(_digits, min_size=2, max_size=2),
                 st.text(_digits, min_size=2, max_size=2), st.text(_digits, min_size=2, max_size=2),
                 st.text(_digits, min_size=2, max_size=2), st.text(_digits, min_size=3, max_size=3),
                 st.sampled_from(["Z", "Z\n", "z", "+"])))
def test_parse_ms_reads_every_spelling_as_strptime_does(parts: tuple[str, ...]) -> None:
    from node.protocol.times import parse_ms

    y, mo, d, h, mi, s, ms, end = parts
    text = f"{y}-{mo}-{d}T{h}:{mi}:{s}.{ms}{end}"
    for t in (text, text.replace("-02-", "-02-").replace(f"-{mo}-{d}", "-02-29")):
        try:
            expected: object = _parse_ms_reference(t)
        except ValueError:
            expected = ValueError
        try:
            got: object = parse_ms(t)
        except ValueError:
            got = ValueError
        assert got == expected, t
