"""A node's data directory: what `init` creates and every other command opens.

    DIR/charter.json   the federation's charter (trust root), as given
    DIR/node.key       the chapter's node key (mode 0600; may be passphrase-sealed)
    DIR/node.db        the store (SQLite, WAL)
    DIR/config.toml    operator settings (optional)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing

from ..protocol.charter import Charter, load_charter
from ..protocol.errors import ConfigError
from ..protocol.keys import check_key_permissions, read_key_file
from ..store import Store, open_store

__all__ = ["DataDir", "init_data_dir"]


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path

    @property
    def charter_path(self) -> Path:
        return self.path / "charter.json"

    @property
    def key_path(self) -> Path:
        return self.path / "node.key"

    @property
    def db_path(self) -> Path:
        return self.path / "node.db"

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    def check(self) -> None:
        if not self.db_path.is_file() or not self.charter_path.is_file():
            raise ConfigError(
                f"{self.path} is not an initialised node data directory; run "
                "`chapter-node init` first", code="not_initialised")

    def charter(self) -> Charter:
        self.check()
        return load_charter(self.charter_path)

    def store(self) -> Store:
        self.check()
        return open_store(self.db_path)

    def chapter(self, store: Store) -> str:
        slug = store.get_meta("chapter")
        if slug is None:
            raise ConfigError(f"{self.path}: store has no chapter; re-run init", code="not_initialised")
        return slug

    def node_key(self, passphrase=lambda: None) -> nacl.signing.SigningKey:
        return read_key_file(self.key_path, passphrase)


def init_data_dir(path: str | Path, charter_file: str | Path, chapter: str,
                  node_key_file: str | Path, passphrase=lambda: None,
                  history: Any = None, now_ms: int | None = None) -> DataDir:
    """Create a node: check the charter names this chapter with this node key (or that
    `history`, a verified export, admitted it since: node.operations.joining), then lay out DIR and store
    that history."""
    charter = load_charter(charter_file)
    check_key_permissions(node_key_file)
    key = read_key_file(node_key_file, passphrase)
    from ..protocol.keys import public_key

    if history is not None:
        from .joining import admitted_by

        admitted_by(charter, history, chapter, public_key(key), now_ms or 0)
    else:
        entry = next((c for c in charter.chapters if c.slug == chapter), None)
        if entry is None:
            raise ConfigError(
                f"the charter has no chapter {chapter!r} (it has: "
                f"{', '.join(c.slug for c in charter.chapters)}); a chapter admitted later by "
                "an adopted proposal: init with --peer URL (any chapter's node), which reads "
                "the history that admitted it", code="unknown_chapter")
        if entry.key != public_key(key):
            raise ConfigError(
                f"the charter gives chapter {chapter!r} node key {entry.key}, but "
                f"{node_key_file} holds {public_key(key)}", code="wrong_node_key")
    d = DataDir(Path(path))
    if d.db_path.exists():
        raise ConfigError(f"{d.path} already holds a node", code="already_initialised")
    d.path.mkdir(parents=True, exist_ok=True)
    os.chmod(d.path, 0o700)
    shutil.copyfile(charter_file, d.charter_path)
    shutil.copyfile(node_key_file, d.key_path)
    os.chmod(d.key_path, 0o600)
    store = open_store(d.db_path)
    try:
        store.set_meta("chapter", chapter)
        store.set_meta("federation", charter.id)
    finally:
        store.close()
    return d
