"""Backups and restores of a node's store, safe while the node serves.

`backup()` uses SQLite's online backup API: a consistent snapshot even with a writer active
(WAL). `restore()` puts a snapshot back in place of a stopped node's store, after checking it
belongs to this chapter and federation, and gives the feed a new epoch so every peer reads it
again from the start; the node then catches up from its peers on its own.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..chapter.duties import SEAL_HOLD_MS
from ..protocol.errors import ConfigError, StoreError
from ..protocol.times import wall_clock_ms
from ..store import open_store
from .datadir import DataDir

__all__ = ["backup", "restore", "node_lock"]


@contextmanager
def node_lock(data_dir: Path) -> Iterator[None]:
    """Held by `chapter-node run` for its lifetime; restore refuses while it is held."""
    path = Path(data_dir) / "node.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise ConfigError(f"a node is running on {data_dir}; stop it first",
                              code="node_running") from e
        yield
    finally:
        os.close(fd)


def backup(data_dir: str | Path, out: str | Path) -> int:
    """Write a consistent copy of the store to `out` (never overwritten); returns its events."""
    d = DataDir(Path(data_dir))
    d.check()
    target = Path(out)
    if target.exists():
        raise ConfigError(f"{target} already exists; refusing to overwrite a backup",
                          code="backup_exists")
    tmp = target.with_name(target.name + ".partial")
    src = sqlite3.connect(f"file:{d.db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        dst.execute("pragma journal_mode=delete")
        count = dst.execute("select count(*) from events").fetchone()[0]
    except sqlite3.Error as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup failed: {e}", code="backup_failed") from e
    finally:
        dst.close()
        src.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return count


def restore(data_dir: str | Path, source: str | Path) -> int:
    """Replace a stopped node's store by a backup of it; returns the events restored."""
    d = DataDir(Path(data_dir))
    d.check()
    src = Path(source)
    try:
        check = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        ok = check.execute("pragma integrity_check").fetchone()[0]
        meta = dict(check.execute("select key, value from meta").fetchall())
        check.close()
    except sqlite3.Error as e:
        raise ConfigError(f"{src} is not a chapter-node backup: {e}", code="bad_backup") from e
    if ok != "ok":
        raise ConfigError(f"{src} is damaged: {ok}", code="bad_backup")
    current = open_store(d.db_path)
    try:
        mine = (current.get_meta("chapter"), current.get_meta("federation"))
    finally:
        current.close()
    if (meta.get("chapter"), meta.get("federation")) != mine:
        raise ConfigError(f"{src} is a backup of chapter {meta.get('chapter')!r} in another "
                          f"federation or chapter than this node ({mine[0]!r})",
                          code="wrong_backup")
    with node_lock(d.path):
        tmp = d.db_path.with_name("node.db.restoring")
        with sqlite3.connect(src) as s, sqlite3.connect(tmp) as t:
            s.backup(t)
        for suffix in ("-wal", "-shm"):
            Path(str(d.db_path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, d.db_path)
        os.chmod(d.db_path, 0o600)
        store = open_store(d.db_path)  # migrates a backup made by an older version
        try:
            store.set_meta("feed_epoch", secrets.token_hex(8))
            store.set_meta("hold_seals_until_ms", str(wall_clock_ms() + SEAL_HOLD_MS))
            return store.count()
        finally:
            store.close()
