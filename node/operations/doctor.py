"""`chapter-node doctor`: what an admin should look at, each finding with what to do.

Checks the things that break a node quietly: key file permissions, the data directory, the
store's integrity and pending migrations, disk space, the configuration, and for every peer:
reachable, the right node key and federation, accepting our signature, and clock skew.
"""

from __future__ import annotations

import email.utils
import json
import os
import shutil
import stat
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..config import load_config
from ..federation.httpsig import sign_request
from ..protocol.errors import ChapterNodeError
from ..protocol.keys import check_key_permissions
from ..protocol.times import wall_clock_ms
from ..store import open_store
from .datadir import DataDir

__all__ = ["Finding", "diagnose"]

SKEW_WARN_MS = 2_000


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # "ok" | "warn" | "fail"
    check: str
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "check": self.check, "detail": self.detail, "fix": self.fix}


def diagnose(data_dir: str | Path, *, timeout_s: float = 5.0) -> list[Finding]:
    d = DataDir(Path(data_dir))
    out: list[Finding] = []
    try:
        d.check()
    except ChapterNodeError as e:
        return [Finding("fail", "data directory", e.message, "run `chapter-node init`")]
    out.append(_key(d))
    out.append(_dir(d))
    try:
        load_config(d.path)
        out.append(Finding("ok", "configuration", "config.toml and CHAPTER_NODE_* are valid"))
    except ChapterNodeError as e:
        out.append(Finding("fail", "configuration", e.message, "fix the named key"))
    out.extend(_store(d))
    out.append(_disk(d))
    out.extend(_mail(d, timeout_s))
    out.extend(_peers(d, timeout_s))
    return out


def _key(d: DataDir) -> Finding:
    try:
        check_key_permissions(d.key_path)
    except ChapterNodeError as e:
        return Finding("fail", "node key permissions", e.message,
                       f"chmod 600 {d.key_path}; if others could read it, rotate the key "
                       "(a proposal changing the chapter's key) — it may be copied")
    return Finding("ok", "node key permissions", f"{d.key_path} is private (0600)")


def _dir(d: DataDir) -> Finding:
    mode = stat.S_IMODE(os.stat(d.path).st_mode)
    if mode & 0o077:
        return Finding("warn", "data directory permissions", f"{d.path} has mode {mode:o}",
                       f"chmod 700 {d.path}: it holds members' names and contacts")
    return Finding("ok", "data directory permissions", f"{d.path} is private ({mode:o})")


def _store(d: DataDir) -> list[Finding]:
    store = open_store(d.db_path, migrate=False)
    try:
        pending = store.pending_migrations()
        result = store.quick_check()
        events = store.count()
    finally:
        store.close()
    findings = [Finding("ok" if result == "ok" else "fail", "store integrity",
                        f"quick_check: {result}; {events} events",
                        "" if result == "ok" else "restore the latest backup "
                        "(`chapter-node restore`); the node then catches up from its peers")]
    findings.append(Finding("warn" if pending else "ok", "store migrations",
                            f"pending: {', '.join(pending)}" if pending else "up to date",
                            "start the node once: migrations run at start" if pending else ""))
    return findings


def _mail(d: DataDir, timeout_s: float) -> list[Finding]:
    """The mail server answers, takes our login and our sender (nothing is sent)."""
    import asyncio

    try:
        from ..notices.mail import smtp_settings

        smtp = smtp_settings(load_config(d.path)[0])
    except ChapterNodeError as e:
        return [Finding("fail", "email", e.message, "set smtp_url and smtp_from together")]
    if smtp is None:
        return [Finding("ok", "email", "not configured: members are told by webhooks only",
                        "set smtp_url and smtp_from to email the chapter's members")]

    async def probe() -> str | None:
        from email.utils import parseaddr

        import aiosmtplib

        from ..notices.mail import open_session

        client = None
        try:
            client = await open_session(smtp, timeout_s)
            code, message = await client.mail(parseaddr(smtp.sender)[1])
            await client.rset()
            return None if code < 400 else f"{code} {message}"
        except (aiosmtplib.SMTPException, OSError) as e:
            return f"{type(e).__name__}: {e}"
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass

    problem = asyncio.run(probe())
    where = f"{smtp.host}:{smtp.port}"
    if problem:
        return [Finding("fail", "email", f"the mail server at {where} refused: {problem}",
                        "check smtp_url, the password (CHAPTER_NODE_SMTP_PASSWORD) and "
                        "that the server lets smtp_from send")]
    return [Finding("ok", "email", f"{where} answers and accepts {smtp.sender} as sender")]


def _disk(d: DataDir) -> Finding:
    free = shutil.disk_usage(d.path).free
    gib = free / 2**30
    if free < 100 * 2**20:
        return Finding("fail", "disk space", f"{gib:.2f} GiB free", "free space now: the store "
                       "cannot take new events")
    if free < 2**30:
        return Finding("warn", "disk space", f"{gib:.2f} GiB free", "free space soon")
    return Finding("ok", "disk space", f"{gib:.1f} GiB free")


def _peers(d: DataDir, timeout_s: float) -> list[Finding]:
    from ..chapter.chapter_node import ChapterNode

    store = d.store()
    try:
        node = ChapterNode(store, d.charter(), d.chapter(store), d.node_key())
        now = wall_clock_ms()
        registry = node.registry(now)
        peers = node.peer_urls(now)
        seed = bytes(node.node_key)
        federation = node.charter.id
    except ChapterNodeError as e:
        store.close()
        return [Finding("fail", "peers", e.message, "check the node key and charter")]
    store.close()
    findings = []
    for slug, url in sorted(peers.items()):
        findings.extend(_peer(slug, url, registry.chapter(slug).key, federation, seed, timeout_s))
    if not peers:
        findings.append(Finding("warn", "peers", "the registry names no other chapter"))
    return findings


def _peer(slug: str, url: str, key: str, federation: str, seed: bytes,
          timeout_s: float) -> list[Finding]:
    name = f"peer {slug}"
    try:
        sent = time.time()
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/status", timeout=timeout_s) as r:
            status = json.loads(r.read())
            date = r.headers.get("Date")
        got = time.time()
    except (urllib.error.URLError, OSError, ValueError) as e:
        return [Finding("fail", name, f"{url} unreachable: {getattr(e, 'reason', e)}",
                        f"is {slug}'s node up? check DNS, TLS and its proxy; sync resumes by "
                        "itself once it answers")]
    findings = []
    if status.get("node_key") != key or status.get("federation") != federation:
        return [Finding("fail", name, f"{url} answers as another node or federation",
                        "the registry's URL for this chapter is wrong, or the node there "
                        "runs with another key or charter")]
    findings.append(Finding("ok", name, f"{url} reachable, right node key and federation"))
    if date:
        skew_ms = int((email.utils.parsedate_to_datetime(date).timestamp() - (sent + got) / 2) * 1000)
        level = "warn" if abs(skew_ms) > SKEW_WARN_MS else "ok"
        findings.append(Finding(level, f"clock skew with {slug}", f"{skew_ms:+d} ms (±1 s resolution)",
                                "run NTP (systemd-timesyncd or chrony) on both servers"
                                if level == "warn" else ""))
    probe = url.rstrip("/") + "/federation/v1/changes?after=0&limit=1"
    headers = sign_request("GET", probe, b"", seed, now=time.time())
    try:
        with urllib.request.urlopen(urllib.request.Request(probe, headers=headers),
                                    timeout=timeout_s):
            findings.append(Finding("ok", f"{slug} accepts our signature", "signed request answered"))
    except urllib.error.HTTPError as e:
        try:
            code = json.loads(e.read())["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = f"HTTP {e.code}"
        findings.append(Finding("fail", f"{slug} accepts our signature", f"refused: {code}",
                                "check this node's clock and that the federation knows this "
                                "node's key; a public_url behind a proxy must be the URL peers use"))
    except (urllib.error.URLError, OSError) as e:
        findings.append(Finding("fail", f"{slug} accepts our signature", str(e), ""))
    return findings
