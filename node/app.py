"""App wiring: a data directory in, a serving aiohttp application out.

`create_app()` opens the store, builds the `ChapterNode`, mounts the routes and starts the
federation's background tasks in `cleanup_ctx`, so they stop cleanly with the server.
"""

from __future__ import annotations

import asyncio
import time
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from .datadir import DataDir
from .federation.api import NODE, NONCES, PUBLIC_URL, routes
from .federation.http_errors import error_middleware
from .federation.httpsig import NonceCache
from .federation.peer_client import PeerClient
from .federation.sync import Federation, SyncSettings
from .service import ChapterNode

__all__ = ["NodeOptions", "create_app", "serve"]

FEDERATION = web.AppKey("federation", Federation)
log = logging.getLogger("chapter_node")


@dataclass(frozen=True)
class NodeOptions:
    data_dir: Path
    public_url: str | None = None  # default: this chapter's URL in the registry
    sync: SyncSettings = field(default_factory=SyncSettings)
    sync_enabled: bool = True


def create_app(options: NodeOptions, passphrase=lambda: None) -> web.Application:
    d = DataDir(Path(options.data_dir))
    charter = d.charter()
    store = d.store()
    node = ChapterNode(store, charter, d.chapter(store), d.node_key(passphrase))
    # Client bodies are bounded per route in read_body; this is only the outer cap.
    app = web.Application(middlewares=[error_middleware], client_max_size=17 * 1024 * 1024)
    app[NODE] = node
    # Requests signed in a second before this start are refused: a restart must not reopen a
    # replay window (only requests of the very second of the restart stay replayable).
    app[NONCES] = NonceCache(not_before=time.time() - 1)
    app[PUBLIC_URL] = options.public_url or node.own_url()
    app.add_routes(routes)

    async def federation_ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession()
        federation = Federation(node, PeerClient(session, bytes(node.node_key),
                                                 timeout_s=options.sync.request_timeout_s),
                                options.sync)
        app[FEDERATION] = federation
        if options.sync_enabled:
            await federation.start()
        try:
            yield
        finally:
            await federation.stop()
            await session.close()
            store.close()

    app.cleanup_ctx.append(federation_ctx)
    return app


def serve(options: NodeOptions, host: str, port: int, passphrase=lambda: None) -> None:
    """Run until SIGINT/SIGTERM; prints one line when it answers."""

    async def main() -> None:
        app = create_app(options, passphrase)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        node = app[NODE]
        print(f"chapter-node {node.chapter} listening on http://{host}:{port} "
              f"(federation {node.charter.id[:12]}…)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())
