"""A small synchronous client of a node's client API, for the CLI (no event loop needed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..protocol.errors import RemoteError

__all__ = ["NodeClient"]


class NodeClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout_s

    def _call(self, method: str, path: str, body: bytes | None = None) -> Any:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())["error"]
            except (ValueError, KeyError, TypeError):
                raise RemoteError(f"{self.base}{path}: HTTP {e.code}", code="http_error") from e
            raise RemoteError(err.get("message", ""), code=err.get("code", "http_error")) from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RemoteError(f"cannot reach {self.base}: {getattr(e, 'reason', e)}",
                              code="node_unreachable") from e

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/api/v1/status")

    def submit(self, event_bytes: bytes) -> dict[str, Any]:
        return self._call("POST", "/api/v1/events", event_bytes)

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/proposals/{proposal_id}")

    def ids_with_prefix(self, prefix: str) -> list[str]:
        return self._call("GET", f"/api/v1/events?prefix={prefix}")["ids"]

    def activity(self, proposal_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/proposals/{proposal_id}/activity")

    def event(self, event_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/events/{event_id}")

    def proposals(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/proposals")["proposals"]
