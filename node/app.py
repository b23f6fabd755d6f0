"""App wiring: a data directory and a configuration in, a serving aiohttp application out.

`create_app()` opens the store, builds the `ChapterNode`, mounts the routes with the request-id
and error middlewares, attaches metrics, and starts the federation's background tasks and the
writer of client events (group commit) in `cleanup_ctx`, so they stop cleanly with the server.
"""

from __future__ import annotations

import asyncio
import email.utils
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from .chapter.chapter_node import ChapterNode, wall_clock_ms
from .chapter.metrics import NodeMetrics
from .config import Config
from .federation.api import (
    BROADCAST,
    CLIENT_GROUPS,
    METRICS,
    NODE,
    NONCES,
    PUBLIC_URL,
    routes,
)
from .federation.http_errors import error_middleware
from .federation.httpsig import NonceCache
from .federation.peer_client import PeerClient
from .federation.stream import Broadcast
from .federation.sync import Federation, SyncSettings
from .ingest import ClientGroups
from .logs import REQUEST_ID, new_request_id, setup_logging
from .notices.mail import deliver_mail_due, smtp_settings
from .operations.backup import node_lock
from .operations.datadir import DataDir
from .web import setup_web

__all__ = ["create_app", "serve", "FEDERATION", "sync_settings"]

FEDERATION = web.AppKey("federation", Federation)
log = logging.getLogger("chapter_node")
access = logging.getLogger("chapter_node.access")


@web.middleware
async def request_id_middleware(request: web.Request,
                                handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                ) -> web.StreamResponse:
    """Carry the caller's X-Request-Id (or a new one) through logs and back in the answer."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if given.isascii() and 0 < len(given) <= 64 and given.isprintable() else new_request_id()
    token = REQUEST_ID.set(rid)
    started = time.perf_counter()
    try:
        response = await handler(request)
        response.headers["X-Request-Id"] = rid
        access.info("%s %s %s", request.method, request.path, response.status,
                    extra={"method": request.method, "path": request.path,
                           "status": response.status,
                           "ms": round((time.perf_counter() - started) * 1000, 1)})
        return response
    finally:
        REQUEST_ID.reset(token)


def sync_settings(config: Config) -> SyncSettings:
    return SyncSettings(pull_interval_s=config.pull_interval,
                        anti_entropy_interval_s=config.anti_entropy_interval,
                        duty_interval_s=config.duty_interval,
                        backoff_cap_s=config.backoff_cap,
                        request_timeout_s=config.request_timeout,
                        peers=None if config.peers == "all" else int(config.peers))


def create_app(data_dir: str | Path, config: Config | None = None, passphrase=lambda: None,
               *, sync_enabled: bool = True) -> web.Application:
    config = config or Config()
    d = DataDir(Path(data_dir))
    charter = d.charter()
    store = d.store()
    node = ChapterNode(store, charter, d.chapter(store), d.node_key(passphrase),
                       clock=node_clock(config.clock_skew_ms))
    metrics = NodeMetrics()
    metrics.attach(node)
    # Bodies are bounded per route in read_body; this is only the outer cap.
    app = web.Application(middlewares=[request_id_middleware, error_middleware],
                          client_max_size=17 * 1024 * 1024)
    app[NODE] = node
    app[METRICS] = metrics
    # Requests signed in a second before this start are refused: a restart must not reopen a
    # replay window (only requests of the very second of the restart stay replayable).
    app[NONCES] = NonceCache(not_before=node.clock() / 1000 - 1)
    app[PUBLIC_URL] = config.public_url or node.own_url()
    mail = smtp_settings(config)  # checked now: a node with half a mail setup does not start
    app.add_routes(routes)
    setup_web(app)

    async def federation_ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession()
        federation = Federation(node, PeerClient(session, bytes(node.node_key),
                                                 timeout_s=config.request_timeout,
                                                 clock=lambda: node.clock() / 1000),
                                sync_settings(config), metrics=metrics, webhooks=config.webhooks,
                                mail=mail is not None, duties=[] if mail is None else [
                                    lambda now: deliver_mail_due(node.store, mail,
                                                                 app[PUBLIC_URL], now)])
        app[FEDERATION] = federation
        if sync_enabled:
            await federation.start()
        try:
            yield
        finally:
            await federation.stop()
            await session.close()
            store.close()

    async def client_groups_ctx(app: web.Application) -> AsyncIterator[None]:
        # The writer of client events (group commit, node.ingest.ClientGroups); it stops
        # before the store closes (cleanup contexts unwind in reverse order).
        groups = ClientGroups(node)
        app[CLIENT_GROUPS] = groups
        groups.start()
        try:
            yield
        finally:
            await groups.stop()

    async def broadcast_ctx(app: web.Application) -> AsyncIterator[None]:
        # Live pages (server-sent events): woken on every store, closed first at shutdown
        # so no open stream holds the server up.
        broadcast = Broadcast()
        broadcast.attach(node)
        app[BROADCAST] = broadcast
        yield

    async def close_streams(app: web.Application) -> None:
        if BROADCAST in app:
            app[BROADCAST].close()

    async def dated(request: web.Request, response: web.StreamResponse) -> None:
        # `Date` from the node's clock, the one peers measure skew against (peer_client)
        response.headers["Date"] = email.utils.formatdate(node.clock() / 1000, usegmt=True)

    app.on_response_prepare.append(dated)
    app.cleanup_ctx.append(federation_ctx)
    app.cleanup_ctx.append(client_groups_ctx)
    app.cleanup_ctx.append(broadcast_ctx)
    app.on_shutdown.append(close_streams)
    return app


def node_clock(skew_ms: int = 0) -> Callable[[], int]:
    """The node's one clock: the wall clock, moved by `clock_skew_ms` (a setting for testing
    only: hardening campaign 8 runs real nodes with skewed clocks)."""
    if not skew_ms:
        return wall_clock_ms
    return lambda: wall_clock_ms() + skew_ms


GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect the young generation every 10,000 net allocations instead of every 700.

    Ingest makes ~10 tracked objects per line that live as long as their batch (dicts,
    events, outcomes): at Python's default every batch of 1,000 lines paid several young and
    middle-generation collections walking the whole batch, ~2 µs of CPU per event (~5 %),
    part of it after the commit, with nothing else to run beside it. Those objects are freed
    by reference counting when their batch ends, so collecting less often keeps nothing
    longer; what does make cycles (a refusal's exception, held with its traceback) is
    collected after 10,000 more allocations instead of 700 (bench/notes.py)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def serve(data_dir: str | Path, config: Config, passphrase=lambda: None) -> None:
    """Run until SIGINT/SIGTERM; prints one line when it answers."""
    setup_logging(config.log_format, config.log_level)
    tune_gc()
    host, port = config.host_port

    async def main() -> None:
        app = create_app(data_dir, config, passphrase)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # A burst of connections must not overflow the default backlog of 128 (a dropped SYN
        # costs the client a one-second retransmission).
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        node = app[NODE]
        log.info("chapter-node %s listening on http://%s:%s (federation %s…)", node.chapter,
                 host, port, node.charter.id[:12])
        print(f"chapter-node {node.chapter} listening on http://{host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        await runner.cleanup()

    with node_lock(Path(data_dir)):  # one node per data dir; restore waits for it to stop
        asyncio.run(main())
