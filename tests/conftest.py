"""Shared fixtures: fixed-seed keys and a small charter, so every test tells the same story."""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest

from node.charter import Charter, charter_from_object
from node.events import b64url


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
