"""Prometheus metrics for one node (`GET /metrics`, text exposition format).

Counters are fed by the ingest pipeline and the sync loops through `NodeMetrics`; gauges that
describe state (outbox depth, peer lag, proposals by state, missing seals) are read from the
node when Prometheus scrapes, so they can never drift from the store. Each app has its own
`CollectorRegistry`, so several nodes can live in one process (tests) without clashing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..protocol.times import wall_clock_ms

if TYPE_CHECKING:
    from .chapter_node import ChapterNode

__all__ = ["NodeMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("chapter_node_events_accepted", "Events stored, by where they came from",
                                ["origin"], registry=r)
        self.refused = Counter("chapter_node_events_refused", "Events refused, by error code",
                               ["code"], registry=r)
        self.ingest_seconds = Histogram(
            "chapter_node_ingest_seconds", "Time to ingest one client event or one peer batch",
            ["source"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.negentropy_rounds = Counter("chapter_node_negentropy_rounds",
                                         "Negentropy round trips, by peer", ["peer"], registry=r)
        self.negentropy_bytes = Counter("chapter_node_negentropy_bytes",
                                        "Negentropy message bytes", ["direction"], registry=r)
        self.seals_published = Counter("chapter_node_seals_published",
                                       "Seals this node signed", registry=r)
        self.peer_requests = Counter("chapter_node_peer_requests", "Requests to peers, by outcome",
                                     ["peer", "outcome"], registry=r)
        self.peer_heads: dict[str, tuple[int, int]] = {}  # peer -> (its head, our checkpoint)

    def attach(self, node: ChapterNode) -> None:
        self.registry.register(_StateCollector(node, self))
        node.observers.append(self)

    # --- observer interface of ChapterNode ----------------------------------------------

    def stored(self, origin: str, count: int) -> None:
        self.accepted.labels("client" if origin == "client" else
                             "self" if origin == "self" else "peer").inc(count)

    def refused_event(self, code: str) -> None:
        self.refused.labels(code).inc()

    def sealed(self) -> None:
        self.seals_published.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges computed from the node's state at scrape time."""

    def __init__(self, node: ChapterNode, metrics: NodeMetrics) -> None:
        self.node = node
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = wall_clock_ms()
        status = self.node.status(now)
        held = GaugeMetricFamily("chapter_node_events_held", "Federation events in the store")
        held.add_metric([], status["events"])
        yield held
        outbox = GaugeMetricFamily("chapter_node_outbox_depth", "Events not yet acknowledged by a peer",
                                   labels=["peer"])
        last = GaugeMetricFamily("chapter_node_peer_last_sync_timestamp_seconds",
                                 "Last successful push or pull, Unix seconds",
                                 labels=["peer", "direction"])
        lag = GaugeMetricFamily("chapter_node_peer_pull_lag_events",
                                "Events the peer holds past our pull checkpoint", labels=["peer"])
        failures = GaugeMetricFamily("chapter_node_peer_failures",
                                     "Consecutive failed rounds with a peer", labels=["peer"])
        skew = GaugeMetricFamily("chapter_node_peer_clock_skew_seconds",
                                 "The peer's clock minus ours, from its Date header", labels=["peer"])
        for p in status["peers"]:
            outbox.add_metric([p["slug"]], p["outbox"])
            failures.add_metric([p["slug"]], p["failures"])
            state = self.node.store.peer(p["slug"])
            if state.last_push_ms:
                last.add_metric([p["slug"], "push"], state.last_push_ms / 1000)
            if state.last_pull_ms:
                last.add_metric([p["slug"], "pull"], state.last_pull_ms / 1000)
            if p["clock_skew_ms"] is not None:
                skew.add_metric([p["slug"]], p["clock_skew_ms"] / 1000)
            head = self.metrics.peer_heads.get(p["slug"])
            if head is not None:
                lag.add_metric([p["slug"]], max(0, head[0] - head[1]))
        yield from (outbox, last, lag, failures, skew)
        states = GaugeMetricFamily("chapter_node_proposals", "Proposals by lifecycle state",
                                   labels=["state"])
        missing = GaugeMetricFamily("chapter_node_seals_missing",
                                    "Seals still missing for closed proposals", labels=["chapter"])
        counts: dict[str, int] = {}
        missing_by: dict[str, int] = {}
        for report in self.node.proposals(now, with_missing=True):
            counts[report["state"]] = counts.get(report["state"], 0) + 1
            for slug in report.get("missing_seals", []):
                missing_by[slug] = missing_by.get(slug, 0) + 1
        for state, n in sorted(counts.items()):
            states.add_metric([state], n)
        for slug, n in sorted(missing_by.items()):
            missing.add_metric([slug], n)
        yield states
        yield missing
