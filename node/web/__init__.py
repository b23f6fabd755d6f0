"""The web app every node serves at `/`: pages for Connectors and members, in their language.

Pages are rendered on the server and read without script; plain ES modules (no bundler) add
what needs the person's key: it is made, kept and used in their browser only, and every act is
signed there and sent to the node's own API. Layout: `pages.py` (handlers), `views.py` (page
models, pure), `assets.py` (static files and their integrity), `templates/`, `static/`; the
words in each language are `node/i18n.py` and `node/locale/`, shared with the mail.
"""

from __future__ import annotations

from aiohttp import web

from .pages import routes, security_headers

__all__ = ["setup_web"]


def setup_web(app: web.Application) -> None:
    app.add_routes(routes)
    app.on_response_prepare.append(security_headers)
