"""Real node processes on 127.0.0.1 for the campaigns that attack over HTTP.

A thin layer over `node.dev.devcluster`: a federation in a temporary directory, started and always
stopped; raw HTTP requests with full control over every header (http.client, not urllib, so a
campaign can send what no well-behaved client would); signed peer requests; peak RSS.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.dev.devcluster import LocalFederation, Person
from node.federation.httpsig import sign_request

__all__ = ["CONNECTORS", "RULES", "Reply", "federation", "request", "peer_request",
           "rss_mb", "status_time"]

CONNECTORS = [Person("Amélie", "paris"), Person("Jonas", "paris"), Person("Marco", "rome"),
              Person("Sofia", "rome"), Person("Lucía", "barcelona")]
RULES = {"min_open_hours": 6 / 3600, "grace_seconds": 1, "seal_timeout_seconds": 6}


@contextmanager
def federation(chapters: tuple[str, ...] = ("paris", "rome", "barcelona"), *,
               start: tuple[str, ...] = ("paris",), proxied: bool = False,
               pull_interval: float = 0.5, anti_entropy: float = 3.0,
               rules: dict[str, Any] | None = None) -> Iterator[LocalFederation]:
    with tempfile.TemporaryDirectory(prefix="hardening-live-") as d:
        people = [p for p in CONNECTORS if p.chapter in chapters]
        fed = LocalFederation(Path(d) / "fed", list(chapters), people, rules or RULES,
                              proxied=proxied, pull_interval=pull_interval,
                              anti_entropy_interval=anti_entropy).setup()
        try:
            for slug in start:
                fed.start(slug, wait=False)
            for slug in start:
                fed.wait_ready(slug)
            yield fed
        finally:
            fed.stop_all()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def code(self) -> str | None:
        try:
            return json.loads(self.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes = b"",
            headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
            timeout: float = 10.0) -> Reply:
    """One request on a fresh connection; `headers` may repeat a name (a list of pairs)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        names = {k.lower() for k, _ in pairs}
        for k, v in pairs:
            conn.putheader(k, v)
        if "content-length" not in names and (body or method in ("POST", "PUT")):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


def peer_request(fed: LocalFederation, sender: str, receiver: str, method: str, path: str,
                 body: bytes = b"", *, now: float | None = None, nonce: str | None = None,
                 content_type: str = "application/x-ndjson", timeout: float = 10.0) -> Reply:
    """A request signed with `sender`'s node key, as its node would send it."""
    node = fed.nodes[receiver]
    url = f"http://127.0.0.1:{node.url_port}{path}"
    headers = sign_request(method, url, body, bytes(fed.nodes[sender].key),
                           now=time.time() if now is None else now, nonce=nonce)
    return request(node.port, method, path, body, {**headers, "Content-Type": content_type},
                   timeout=timeout)


def status_time(port: int, timeout: float = 5.0) -> float:
    """Seconds for GET /api/v1/status to answer 200 (inf if it does not, within `timeout`)."""
    start = time.monotonic()
    try:
        reply = request(port, "GET", "/api/v1/status", timeout=timeout)
    except OSError:
        return float("inf")
    return time.monotonic() - start if reply.status == 200 else float("inf")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MiB (Linux /proc)."""
    current = peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current, peak
