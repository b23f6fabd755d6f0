"""The pages: each handler reads what the JSON API reads, builds a page model
(node/web/views.py) and renders one template in the viewer's language.

Pages only read. Every act is signed in the browser and sent to `POST /api/v1/events`, so the
pages need no session, no cookie but the language, and no CSRF token: a forged request can
only carry a signature the forger could make anyway.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .. import i18n
from ..federation.api import NODE, node_info
from ..federation.http_errors import status_of
from ..notices import activity
from ..protocol.errors import BadRequest, ChapterNodeError, NotFound
from ..protocol.times import format_ms, parse_ms
from .assets import MODULES, assets
from .views import group_proposals, proposal_page, rich_text

__all__ = ["routes", "security_headers", "environment", "CSP"]

routes = web.RouteTableDef()

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer of the node, pages and API alike (an `on_response_prepare` hook, so
    streams get them too): no inline script or style can run, no other site can frame us."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")


def _time(ms: int | None, lang: str, *, relative: bool = False) -> Markup:
    """`<time>` in UTC for readers without script; time.js rewrites it in the viewer's zone
    and language, keeping the exact UTC time in `title`."""
    if ms is None:
        return Markup("")
    stamp = format_ms(ms)
    return Markup('<time datetime="{0}" title="{0}" data-style="{1}">{2}</time>').format(
        stamp, "relative" if relative else "absolute", i18n.when(ms, lang))


def _people(gettext: Callable[[str], str]) -> Callable[[dict[str, Any]], Markup]:
    """How a page names a key, per language: a Connector by the registry's name, a member by
    chapter and short key (never the name their chapter holds), a node by its chapter.
    Cached: a large proposal names the same thousand people thousands of times."""
    @lru_cache(maxsize=16384)
    def render(role: str, name: str | None, chapter: str | None, short: str) -> Markup:
        if role == "connector":
            return Markup('<span class="person connector"><strong>{0}</strong> <span class="meta">'
                          '{1} · <code>{2}</code></span></span>').format(
                name, gettext("Connector, %(chapter)s") % {"chapter": chapter}, short)
        if role == "member":
            return Markup('<span class="person member">{0} <code>{1}</code></span>').format(
                gettext("Member of %(chapter)s") % {"chapter": chapter}, short)
        if role == "node":
            return Markup('<span class="person node">{0}</span>').format(
                gettext("The %(chapter)s node") % {"chapter": chapter})
        return Markup('<span class="person unknown">{0} <code>{1}</code></span>').format(
            gettext("Unknown key"), short)

    def person(who: dict[str, Any]) -> Markup:
        return render(who["role"], who.get("name"), who.get("chapter"), who["short"])

    return person


_ENVIRONMENTS: dict[str, Environment] = {}


def environment(lang: str) -> Environment:
    """One autoescaping Jinja environment per language, its gettext installed (newstyle:
    placeholders by name, and a missing one is an error, not silent text)."""
    env = _ENVIRONMENTS.get(lang)
    if env is None:
        env = Environment(loader=PackageLoader("node.web", "templates"),
                          autoescape=select_autoescape(default=True),
                          extensions=["jinja2.ext.i18n"],
                          trim_blocks=True, lstrip_blocks=True)
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        person = _people(i18n.translations(lang).gettext)
        env.globals.update(asset=lambda path: assets()[path], languages=i18n.LANGUAGES,
                           modules=MODULES, person=person,
                           key_of=lambda people, key: person(
                               people.get(key) or {"role": "unknown", "short": key[:8]}))
        env.filters["when"] = lambda ms, relative=False: _time(ms, lang, relative=relative)
        env.filters["how_long"] = lambda ms: i18n.how_long(ms, lang)
        env.filters["ms"] = parse_ms
        env.filters["rich"] = rich_text
        env.filters["pretty_json"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
        _ENVIRONMENTS[lang] = env
    return env


def _lang(request: web.Request) -> str:
    return i18n.choose(request.query.get("lang"), request.cookies.get("lang"),
                       request.headers.get("Accept-Language", ""))


def render(request: web.Request, template: str, *, status: int = 200,
           page_modules: str = "plain", **context: Any) -> web.Response:
    lang = _lang(request)
    node = request.app[NODE]
    now = node.clock()
    page = environment(lang).get_template(template).render(
        lang=lang, path=request.path, node=node_info(node, now), now_ms=now,
        page_modules=page_modules, **context)
    response = web.Response(text=page, status=status, content_type="text/html",
                            charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    if request.query.get("lang") in i18n.LANGUAGES:  # the switch: remembered for a year
        response.set_cookie("lang", request.query["lang"], max_age=365 * 86400,
                            samesite="Lax", httponly=True, path="/")
    response.enable_compression()
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: Handler) -> Handler:
    """The one place a refusal becomes a page: its words, in the viewer's language, with
    the status the API would give."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ChapterNodeError as e:
            return render(request, "error.html", status=status_of(e), error=e)
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


# --- pages ------------------------------------------------------------------------------


@routes.get("/")
@page
async def proposals(request: web.Request) -> web.Response:
    """Open, closing soon and decided proposals, by kind."""
    node = request.app[NODE]
    kind = request.query.get("kind") or None
    if kind not in (None, "consent", "action", "vote"):
        raise BadRequest("kind must be consent, action or vote", code="bad_query")
    now = node.clock()
    groups = group_proposals(node.proposals(now, kind=kind), now)
    return render(request, "proposals.html", groups=groups, kind=kind, page_modules="plain")


@routes.get("/proposals/new")
@page
async def new_proposal(request: web.Request) -> web.Response:
    """The form to open a proposal; `?escalate=ID` prefills a vote on a vetoed one."""
    node = request.app[NODE]
    now = node.clock()
    escalate = None
    pid = request.query.get("escalate")
    if pid:
        escalate = node.proposal_report(pid, now)
    return render(request, "new.html", escalate=escalate, page_modules="sign")


@routes.get("/proposals/{id}")
@page
async def proposal(request: web.Request) -> web.Response:
    """One proposal: its text, discussion, positions, result, seals, and the acts its kind
    allows."""
    node = request.app[NODE]
    now = node.clock()
    pid = request.match_info["id"]
    report = node.proposal_report(pid, now)
    events = node.store.events_of(proposal=pid, types=activity.ACTIVITY_TYPES)
    model = proposal_page(report, activity.activity(events, node.registry(now)),
                          node_info(node, now), now)
    return render(request, "proposal.html", p=model, page_modules="proposal")


@routes.get("/events/{id}")
@page
async def receipt(request: web.Request) -> web.Response:
    """A receipt for one signed event: the JSON, where it stands, how to check it offline."""
    node = request.app[NODE]
    eid = request.match_info["id"]
    event = node.store.get(eid)
    if event is None:
        raise NotFound(f"no event {eid} on this node")
    report = None
    sealed_by: list[str] = []
    if event.proposal is not None:
        try:
            report = node.proposal_report(event.proposal, node.clock())
        except NotFound:
            report = None
        seal_chapter = {s["seal"]: s["chapter"] for s in report["seals"]} if report else {}
        sealed_by = sorted(seal_chapter[seal] for seal, ids in
                           node.store.sealed_for(event.proposal).items()
                           if event.id in ids and seal in seal_chapter)
    return render(request, "receipt.html", event=event.to_json(), event_id=event.id,
                  report=report, sealed_by=sealed_by,
                  who=activity.who(node.registry(node.clock()), event.author),
                  page_modules="plain")


@routes.get("/key")
@page
async def key(request: web.Request) -> web.Response:
    """Create, import, back up or forget the key this browser signs with."""
    return render(request, "key.html", page_modules="key")


@routes.get("/delegations")
@page
async def delegations(request: web.Request) -> web.Response:
    """My delegations (global and per proposal) and where my weight ends up."""
    node = request.app[NODE]
    now = node.clock()
    votes = [p for p in node.proposals(now, kind="vote") if p["state"] == "open"]
    return render(request, "delegations.html", votes=votes, page_modules="sign")


@routes.get("/node")
@page
async def node_page(request: web.Request) -> web.Response:
    """This node: chapter, peers and when each last synced, seals, health. No secrets."""
    node = request.app[NODE]
    now = node.clock()
    status = node.status(now)
    return render(request, "node.html", node_status=status, seals=node.store.sealed_count(),
                  page_modules="plain")


@routes.get("/check")
@page
async def check_page(request: web.Request) -> web.Response:
    """Check an export file in the browser: every signature, seal and result, no node needed."""
    return render(request, "check.html", page_modules="check")


@routes.get("/mail/settings")
@page
async def mail_page(request: web.Request) -> web.Response:
    """A member sets their email address and how often they are told, signed with their key."""
    return render(request, "mail.html", page_modules="sign")


def _unsubscriber(request: web.Request) -> tuple[str, str]:
    from ..notices.mail import check_token
    from ..protocol.errors import Unauthenticated

    key, token = request.query.get("key", ""), request.query.get("token", "")
    store = request.app[NODE].store
    if not key or not token or not check_token(store, key, token):
        raise Unauthenticated("this unsubscribe link was not made by this node for this "
                              "person: use the link in one of its emails", code="bad_token")
    return key, token


@routes.get("/mail/unsubscribe")
@page
async def unsubscribe_page(request: web.Request) -> web.Response:
    """The link in every email: a page with one button (a GET never changes anything)."""
    key, token = _unsubscriber(request)
    return render(request, "unsubscribe.html", key=key, token=token, done=False)


@routes.post("/mail/unsubscribe")
@page
async def unsubscribe(request: web.Request) -> web.Response:
    """RFC 8058 one-click (a mail client POSTs `List-Unsubscribe=One-Click`), or the button:
    no login; the token in the link is what proves it is this person's."""
    key, token = _unsubscriber(request)
    node = request.app[NODE]
    node.store.set_mail(key, mode="none", now_ms=node.clock())
    return render(request, "unsubscribe.html", key=key, token=token, done=True)


@routes.get("/static/{path:.+}")
async def static(request: web.Request) -> web.StreamResponse:
    asset = assets().get(request.match_info["path"])
    if asset is None:
        raise NotFound("no such file")
    headers = {"Content-Type": asset.content_type, "ETag": asset.etag,
               "Cache-Control": ("public, max-age=31536000, immutable"
                                 if request.query.get("v") or asset.path.startswith("vendor/")
                                 else "no-cache")}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    return web.Response(body=body, headers=headers)
