"""Shared fixtures: fixed-seed keys and a small charter, so every test tells the same story."""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest

from node.protocol.charter import Charter, charter_from_object
from node.protocol.events import b64url


def person_key(name: str) -> nacl.signing.SigningKey:
    """A deterministic key per name: tests read as stories about named people."""
    return nacl.signing.SigningKey(hashlib.sha256(f"chapter-node test {name}".encode()).digest())


def pub(name: str) -> str:
    return b64url(bytes(person_key(name).verify_key))


def small_charter(**rules: object) -> dict:
    return {
        "name": "OuiShare Test Federation",
        "created_at": "2026-01-01T00:00:00.000Z",
        "chapters": [
            {"slug": "paris", "key": pub("node paris"), "url": "http://127.0.0.1:1"},
            {"slug": "rome", "key": pub("node rome"), "url": "http://127.0.0.1:2"},
            {"slug": "barcelona", "key": pub("node barcelona"), "url": "http://127.0.0.1:3"},
        ],
        "connectors": [
            {"key": pub("amelie"), "name": "Amélie", "chapter": "paris"},
            {"key": pub("marco"), "name": "Marco", "chapter": "rome"},
            {"key": pub("lucia"), "name": "Lucía", "chapter": "barcelona"},
        ],
        "rules": dict(rules) if rules else {"min_open_hours": 72},
    }


@pytest.fixture
def charter() -> Charter:
    return charter_from_object(small_charter())


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    """Paris's node in process, its federation sync off: the HTTP API and the pages."""
    import json

    from node.app import create_app
    from node.operations.datadir import init_data_dir
    from node.protocol.keys import write_key_file

    charter_file = tmp_path / "charter.json"
    charter_file.write_text(json.dumps(small_charter(min_open_hours=1)))
    key = tmp_path / "paris-node.key"
    write_key_file(key, person_key("node paris"))
    init_data_dir(tmp_path / "paris", charter_file, "paris", key)
    return await aiohttp_client(create_app(tmp_path / "paris", sync_enabled=False))
