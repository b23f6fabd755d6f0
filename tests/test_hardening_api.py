"""Campaign 4's findings, pinned in process: what schemathesis (and the probes that followed
it) found wrong in the HTTP layer, now fixed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from hardening.kit import Kit, charter_doc, signing_key
from node.app import create_app
from node.federation.httpsig import sign_request
from node.operations.datadir import init_data_dir
from node.protocol.keys import write_key_file

KIT = Kit()
PARIS_URL = charter_doc()["chapters"][0]["url"]  # the public URL peers sign for


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client) -> TestClient:
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(charter_doc()))
    key = tmp_path / "paris-node.key"
    write_key_file(key, signing_key("node paris"))
    init_data_dir(tmp_path / "paris", charter, "paris", key)
    return await aiohttp_client(create_app(tmp_path / "paris", sync_enabled=False))


def _signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
    return sign_request(method, PARIS_URL + path, body, bytes(signing_key("node rome")),
                        now=time.time())


@pytest.mark.parametrize("ids", [["\ud800"], ["A" * 64], ["a" * 63], ["a" * 64 + "\n"], [1]])
async def test_fetch_refuses_ids_that_are_not_event_ids(client: TestClient, ids: list) -> None:
    body = json.dumps({"ids": ids}).encode()
    resp = await client.post("/federation/v1/fetch", data=body,
                             headers=_signed("POST", "/federation/v1/fetch", body))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_fetch"


async def test_fetch_of_a_held_event_still_works(client: TestClient) -> None:
    proposal = next(e for e in KIT.story_events if e.type == "proposal")
    body = json.dumps({"ids": [proposal.id, "f" * 64]}).encode()
    resp = await client.post("/federation/v1/fetch", data=body,
                             headers=_signed("POST", "/federation/v1/fetch", body))
    assert resp.status == 200 and await resp.read() == b""  # not held here: nothing, no error


async def test_a_405_lists_the_allowed_methods(client: TestClient) -> None:
    resp = await client.request("TRACE", "/api/v1/events")
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_an_unknown_state_is_refused(client: TestClient) -> None:
    resp = await client.get("/api/v1/proposals", params={"state": "bogus"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_query"
    for state in ("open", "closed", "final", "amended", "pending", "adopted"):
        assert (await client.get("/api/v1/proposals", params={"state": state})).status == 200


@pytest.mark.parametrize("after", ["٢", "+5", " 5", "5_0", "-1", "0x10", "1e3", ""])
async def test_query_integers_are_plain_ascii_digits(client: TestClient, after: str) -> None:
    path = f"/federation/v1/changes?after={_quote(after)}"
    resp = await client.get(path, headers=_signed("GET", path))
    assert resp.status == 400, path
    assert (await resp.json())["error"]["code"] == "bad_query"


async def test_a_cursor_past_everything_means_after_everything(client: TestClient) -> None:
    after = "9" * 25
    resp = await client.get(f"/federation/v1/changes?after={after}",
                            headers=_signed("GET", f"/federation/v1/changes?after={after}"))
    assert resp.status == 200 and await resp.read() == b""


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
