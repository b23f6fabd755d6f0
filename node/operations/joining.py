"""A chapter that joins after the founding: its node starts from the charter *and* the history
that proves its admission (PROTOCOL §3: everything past the charter is derived from events).

`chapter-node init --peer URL` (or `--history FILE`, an export) reads the federation's log from
any chapter's node, checks it as an auditor would (every signature, the charter it starts from,
the sealed lists against their roots), derives the registry now from the charter and that log,
and finds there the chapter with the node key given: admitted by an adopted `admit_chapter`
proposal. The log is then stored as if a peer had sent it, so the new node starts with the
backlog and syncs from there. A chapter whose node moved (`chapter_url`) is found the same way.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..protocol.charter import Charter
from ..protocol.errors import ConfigError, RemoteError
from ..protocol.events import Event
from .audit import Export, read_export, timeline_of

__all__ = ["fetch_history", "admitted_by", "history_lines", "BATCH"]

BATCH = 1000  # lines stored per transaction, as a peer pushes them


def fetch_history(peer_url: str, into: Path, timeout_s: float = 60.0) -> Path:
    """Download a peer's export (`GET /api/v1/export`) into a file under `into`."""
    url = peer_url.rstrip("/") + "/api/v1/export"
    target = into / "history.jsonl"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer, target.open("wb") as out:
            shutil.copyfileobj(answer, out)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise RemoteError(f"cannot read the federation's history from {url}: "
                          f"{getattr(e, 'reason', e)}", code="node_unreachable") from e
    return target


def admitted_by(charter: Charter, export: Export, chapter: str, node_key: str,
                now_ms: int) -> Event | None:
    """The proposal whose adopted effect admitted `chapter` with `node_key` (None: the charter
    names it). ConfigError, in words, when the history does not make it a chapter now."""
    if export.charter.id != charter.id:
        raise ConfigError(f"that history belongs to another federation ({export.charter.id[:12]}…, "
                          f"not {charter.id[:12]}…): check the charter file and the peer",
                          code="wrong_federation")
    entry = timeline_of(export).at(now_ms).chapter(chapter)
    admitting = [p for p in export.proposals()
                 if (p.body.get("effect") or {}).get("admit_chapter", {}).get("slug") == chapter]
    if entry is None:
        if admitting:
            raise ConfigError(
                f"chapter {chapter} is not admitted yet: its proposal {admitting[-1].id[:12]} "
                "has not closed adopted (wait for its close and seals, then run init again)",
                code="not_admitted")
        raise ConfigError(f"no chapter {chapter} in the charter nor admitted by any adopted "
                          "proposal: a Connector first proposes to admit it (propose --admit "
                          "SLUG:KEY:URL)", code="unknown_chapter")
    if entry.key != node_key:
        raise ConfigError(f"chapter {chapter} was admitted with node key {entry.key}, not "
                          f"{node_key}: init with the key file the proposal named",
                          code="wrong_node_key")
    if any(c.slug == chapter for c in charter.chapters):
        return None
    return admitting[-1] if admitting else None


def history_lines(path: Path) -> list[list[bytes]]:
    """The export's event and sealed lines (its charter line left out), in batches."""
    lines = [line for line in path.read_bytes().split(b"\n")[1:] if line.strip()]
    return [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]


def read_history(peer: str | None, history: str | None) -> tuple[Export, Path, Path | None]:
    """(verified export, its file, a temporary folder to remove) from --peer or --history."""
    if (peer is None) == (history is None):
        raise ConfigError("give --peer URL or --history FILE", code="bad_option")
    if history is not None:
        path = Path(history)
        return read_export(path), path, None
    folder = Path(tempfile.mkdtemp(prefix="chapter-node-history-"))
    path = fetch_history(peer, folder)
    return read_export(path), path, folder
