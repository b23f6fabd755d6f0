"""The HTTP API in process: documented routes, clear errors for bad input, nothing stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from node.federation.api import NODE
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .conftest import person_key, small_charter

OPENAPI = yaml.safe_load((Path(__file__).parent.parent / "docs" / "openapi.yaml").read_text())


def schema(name: str) -> Draft202012Validator:
    """A component schema of docs/openapi.yaml, refs resolved within the document."""
    doc = {**OPENAPI["components"]["schemas"][name], "components": OPENAPI["components"]}
    return Draft202012Validator(doc)


def test_openapi_document_is_valid() -> None:
    validate_openapi(OPENAPI)


async def test_every_route_the_app_serves_is_documented(client: TestClient) -> None:
    served = set()
    for route in client.app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        path = route.resource.canonical if route.resource else ""
        served.add((route.method.lower(), path))
    documented = {(m, p) for p, ops in OPENAPI["paths"].items() for m in ops}
    assert served and served <= documented, served - documented
    assert documented <= served, documented - served


def proposal_event(**body: object):
    now = int(time.time() * 1000)
    return sign_event(federation=small_charter_id(), type="proposal", chapter="paris",
                      created_at=format_ms(now),
                      body={"title": "Adopt the budget", "text": "", "kind": "consent",
                            "closes_at": format_ms(now + 2 * 3_600_000), **body},
                      signing_key=person_key("amelie"))


def small_charter_id() -> str:
    from node.protocol.charter import charter_from_object

    return charter_from_object(small_charter(min_open_hours=1)).id


async def test_submit_then_read_back(client: TestClient) -> None:
    event = proposal_event()
    resp = await client.post("/api/v1/events", data=event.canonical)
    assert resp.status == 201 and (await resp.json()) == {"id": event.id}
    again = await client.post("/api/v1/events", data=event.canonical)
    assert again.status == 200 and (await again.json())["duplicate"] is True
    got = await client.get(f"/api/v1/events/{event.id}")
    assert await got.read() == event.canonical
    report = await (await client.get(f"/api/v1/proposals/{event.id}")).json()
    schema("ProposalReport").validate(report)
    assert report["state"] == "open" and report["tally"]["outcome"] == "adopted"
    assert report["final"] is False
    listing = await (await client.get("/api/v1/proposals?kind=consent")).json()
    assert [p["id"] for p in listing["proposals"]] == [event.id]
    status = await (await client.get("/api/v1/status")).json()
    schema("Status").validate(status)
    assert status["chapter"] == "paris" and status["events"] == 1


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "not_json"),
    (b"[]", 400, "not_an_object"),
    (b'{"v": 1, "v": 1}', 400, "duplicate_key"),
    (b"x" * 300_000, 413, "payload_too_large"),
])
async def test_bad_bodies_get_clear_errors_and_store_nothing(client: TestClient, body: bytes,
                                                            status: int, code: str) -> None:
    resp = await client.post("/api/v1/events", data=body)
    assert resp.status == status
    answer = await resp.json()
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert client.app[NODE].store.count() == 0


async def test_refusals_by_rule(client: TestClient) -> None:
    node = client.app[NODE]
    # a proposal closing too soon is not admissible
    short = proposal_event(closes_at=format_ms(int(time.time() * 1000) + 60_000))
    resp = await client.post("/api/v1/events", data=short.canonical)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "closes_too_soon"
    # a veto by a member who is not a Connector
    prop = proposal_event()
    assert (await client.post("/api/v1/events", data=prop.canonical)).status == 201
    veto = sign_event(federation=small_charter_id(), type="veto", chapter="paris",
                      created_at=format_ms(int(time.time() * 1000)),
                      body={"proposal": prop.id, "reason": "no"}, signing_key=person_key("eve"))
    resp = await client.post("/api/v1/events", data=veto.canonical)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_connector"
    # an act dated ahead of the node's clock by more than the grace window
    ahead = sign_event(federation=small_charter_id(), type="endorse", chapter="paris",
                       created_at=format_ms(int(time.time() * 1000) + 400_000),
                       body={"proposal": prop.id}, signing_key=person_key("marco"))
    resp = await client.post("/api/v1/events", data=ahead.canonical)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "created_at_in_future"
    assert node.store.count() == 1


async def test_unknown_routes_methods_and_queries(client: TestClient) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.delete("/api/v1/events")
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"
    resp = await client.get("/api/v1/proposals?kind=poll")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_query"
    resp = await client.get("/api/v1/proposals/" + "0" * 64)
    assert resp.status == 404
    resp = await client.get("/federation/v1/changes?after=x")
    assert resp.status == 401  # authentication comes before anything else a peer sends
    resp = await client.post("/federation/v1/events", data=b"x" * (17 * 1024 * 1024))
    assert resp.status == 413
