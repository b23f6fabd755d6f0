"""A federation of real node processes on 127.0.0.1: what `make demo` and the multi-node tests run.

Each chapter gets a node key, a data directory made by `init_data_dir`, and a `chapter-node
run` process. A chapter's URL in the charter can point at a fault proxy in front of its node
(`url_port`), so tests can partition the federation without kernel traffic shaping.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing

from ..operations.datadir import init_data_dir
from ..protocol.charter import Charter, charter_from_object
from ..protocol.events import Event, b64url, sign_event
from ..protocol.keys import write_key_file
from ..protocol.times import format_ms, wall_clock_ms

__all__ = ["Person", "LocalNode", "LocalFederation", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Person:
    """Someone who signs their own acts (a Connector or a member), with a deterministic key."""

    name: str
    chapter: str

    @property
    def key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(hashlib.sha256(f"chapter-node person {self.name}".encode()).digest())

    @property
    def public(self) -> str:
        return b64url(bytes(self.key.verify_key))


@dataclass
class LocalNode:
    slug: str
    port: int
    url_port: int
    data_dir: Path
    key: nacl.signing.SigningKey
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@dataclass
class LocalFederation:
    root: Path
    chapters: list[str]
    connectors: list[Person]
    rules: dict[str, Any] = field(default_factory=dict)
    proxied: bool = False
    pull_interval: float = 0.5
    anti_entropy_interval: float = 3.0
    nodes: dict[str, LocalNode] = field(default_factory=dict)
    charter: Charter | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    node_env: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> its own extras

    def setup(self) -> LocalFederation:
        self.root.mkdir(parents=True, exist_ok=True)
        for slug in self.chapters:
            key = nacl.signing.SigningKey(hashlib.sha256(f"chapter-node node {slug} {self.root}".encode()).digest())
            port = free_port()
            self.nodes[slug] = LocalNode(slug, port, free_port() if self.proxied else port,
                                         self.root / slug, key)
        doc = {
            "name": "Demo federation",
            "created_at": format_ms(wall_clock_ms() - 3_600_000),
            "chapters": [{"slug": n.slug, "key": b64url(bytes(n.key.verify_key)),
                          "url": f"http://127.0.0.1:{n.url_port}"} for n in self.nodes.values()],
            "connectors": [{"key": p.public, "name": p.name, "chapter": p.chapter}
                           for p in self.connectors],
            "rules": self.rules,
        }
        charter_path = self.root / "charter.json"
        charter_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        self.charter = charter_from_object(doc)
        for node in self.nodes.values():
            key_path = self.root / f"{node.slug}-node.key"
            if not key_path.exists():
                write_key_file(key_path, node.key)
            init_data_dir(node.data_dir, charter_path, node.slug, key_path)
        return self

    def start(self, slug: str, wait: bool = True) -> LocalNode:
        node = self.nodes[slug]
        node.log_path = self.root / f"{slug}.log"
        log = open(node.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **self.node_env.get(slug, {})}
        node.process = subprocess.Popen(
            [sys.executable, "-m", "node", "run", "--data-dir", str(node.data_dir),
             "--listen", f"127.0.0.1:{node.port}",
             "--pull-interval", str(self.pull_interval),
             "--anti-entropy-interval", str(self.anti_entropy_interval), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready(slug)
        return node

    def start_all(self) -> None:
        for slug in self.nodes:
            self.start(slug, wait=False)
        for slug in self.nodes:
            self.wait_ready(slug)

    def wait_ready(self, slug: str, timeout: float = 20.0) -> None:
        node = self.nodes[slug]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"{slug} exited: {node.log_path.read_text() if node.log_path else ''}")
            try:
                node.get("/api/v1/status", timeout=1)
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise TimeoutError(f"{slug} did not answer within {timeout} s")

    def kill(self, slug: str) -> None:
        """kill -9: no goodbye, no flush beyond what SQLite already made durable."""
        node = self.nodes[slug]
        if node.process and node.process.poll() is None:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()
        node.process = None

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.process and node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGTERM)
        for node in self.nodes.values():
            if node.process:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(node.process.pid, signal.SIGKILL)
                    node.process.wait()
                node.process = None

    # --- acting as people -------------------------------------------------------------

    def act(self, person: Person, via: str, type: str, body: dict[str, Any],
            created_ms: int | None = None) -> tuple[int, Any, Event]:
        """`person` signs an act with their own key and submits it through node `via`."""
        assert self.charter is not None
        event = sign_event(federation=self.charter.id, type=type, chapter=via,
                           created_at=format_ms(created_ms or wall_clock_ms()),
                           body=body, signing_key=person.key)
        status, answer = self.nodes[via].post("/api/v1/events", event.canonical)
        return status, answer, event

    def proposal(self, slug: str, pid: str) -> dict[str, Any]:
        return self.nodes[slug].get(f"/api/v1/proposals/{pid}")

    def log_tails(self, lines: int = 15) -> str:
        """The last lines each node logged, without its answered requests (a pull every few
        tenths of a second): what a failed wait shows, since CI keeps no files."""
        tails = []
        for node in self.nodes.values():
            path = node.log_path
            text = path.read_text(errors="replace") if path and path.exists() else ""
            kept = [line for line in text.splitlines()
                    if not ("chapter_node.access" in line and " 200 [" in line)]
            tails.append(f"--- {node.slug}.log ---\n" + "\n".join(kept[-lines:]))
        return "\n".join(tails)

    def wait_for(self, predicate, timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return True
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(interval)
        return False
