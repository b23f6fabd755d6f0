"""Telling the chapter's own people by email: the notices webhooks get, as mail, from the
chapter's node to its members and Connectors who gave an address.

Addresses and preferences are chapter-local (`local_members.contact`, `local_mail`): they never
leave this node (subsidiarity). A notice is made once (node.notices.webhooks.Notices) with one delivery
row per recipient (`target` = `mail:<person key>`); the address is looked up when the mail is
sent, so a changed address or an unsubscribe applies to what is still queued.

- Sent through the configured server with aiosmtplib (STARTTLS or TLS, authenticated); a
  server that refuses a recipient for good (5xx) marks the delivery failed; anything else is
  retried with backoff, across restarts.
- Each delivery is committed as delivered right after the server accepts it. A kill -9 in
  the instant between the two resends that one mail once, with the same `Message-ID`, which
  mail clients show once.
- Plain text and HTML, in the person's language, a link to the proposal on this node,
  threading headers (one proposal is one thread), RFC 8058 one-click unsubscribe with a token
  only this node can make, and no tracking of any kind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

from ..config import Config
from ..i18n import LANGUAGES, translations
from ..protocol.errors import ConfigError
from ..store import Store

__all__ = ["Smtp", "smtp_settings", "open_session", "MAIL_KINDS", "compose", "compose_digest",
           "unsubscribe_token", "check_token", "deliver_mail_due", "mail_target"]

log = logging.getLogger("chapter_node.mail")
MAX_BACKOFF_MS = 3_600_000
MODES = ("each", "digest", "none")
_WIRE = policy.SMTP.clone(max_line_length=998)
MAIL_KINDS = ("proposal_opened", "closing_soon", "veto_filed", "veto_withdrawn", "green_light",
              "result_final")


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    tls: str  # "starttls", "tls" or "none"
    username: str | None
    password: str | None
    sender: str


def smtp_settings(config: Config) -> Smtp | None:
    """The mail server from the settings, or None when the chapter sends no email."""
    if config.smtp_url is None:
        return None
    if config.smtp_from is None:
        raise ConfigError("smtp_url is set but smtp_from is not: who do the mails come from?",
                          code="bad_config")
    parts = urlsplit(config.smtp_url)
    tls = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
    password = config.smtp_password
    if password is None and config.smtp_password_file:
        try:
            password = Path(config.smtp_password_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read smtp_password_file: {e.strerror}",
                              code="bad_config") from e
    port = parts.port or {"none": 25, "starttls": 587, "tls": 465}[tls]
    return Smtp(parts.hostname or "", port, tls, parts.username, password, config.smtp_from)


def mail_target(key: str) -> str:
    return f"mail:{key}"


def _secret(store: Store) -> bytes:
    value = store.get_meta("mail_secret")
    if value is None:
        value = secrets.token_hex(32)
        store.set_meta("mail_secret", value)
    return bytes.fromhex(value)


def unsubscribe_token(store: Store, key: str) -> str:
    """Only this node can make it: HMAC of the person's key under the node's own secret."""
    return _token(_secret(store), key)


def _token(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]


def check_token(store: Store, key: str, token: str) -> bool:
    """Whether `token`, any text from a link, is the one this node made for `key` (ours are
    hex; compare_digest raises TypeError on a non-ASCII str)."""
    return token.isascii() and hmac.compare_digest(unsubscribe_token(store, key), token)


def _words(kind: str, payload: dict[str, Any], gettext) -> tuple[str, str]:
    """(subject, first sentence) of a notice, in the recipient's language."""
    title = payload.get("proposal", {}).get("title", "")
    outcome = payload.get("outcome", "")
    table = {
        "proposal_opened": (gettext("New proposal: %(title)s"),
                            gettext("A proposal was opened for the whole federation.")),
        "closing_soon": (gettext("Closing within 24 hours: %(title)s"),
                         gettext("You have not acted on this proposal yet, and it closes within "
                                 "24 hours.")),
        "veto_filed": (gettext("Veto on: %(title)s"),
                       gettext("A Connector vetoed this proposal. Their reason:")),
        "veto_withdrawn": (gettext("Veto withdrawn: %(title)s"),
                           gettext("A Connector withdrew their veto on this proposal.")),
        "green_light": (gettext("Green light: %(title)s"),
                        gettext("Three Connectors agree: this action has the green light.")),
        "result_final": (gettext("Final result: %(title)s"),
                         gettext("The result of this proposal is final: %(outcome)s.")),
    }
    subject, first = table[kind]
    if kind == "result_final":
        first = first % {"outcome": outcome}
    return subject % {"title": title}, first


def _envelope(*, sender: str, address: str, subject: str, lang: str, message_id: str,
              thread: str | None, unsubscribe: str, text: str, html: Markup) -> EmailMessage:
    """One mail to one person: headers every mail of the node carries, text and HTML."""
    # long single-token headers (a thread id, the unsubscribe URL) must not be folded or
    # RFC 2047-encoded: mail clients would not thread, nor find the one-click link
    message = EmailMessage(policy=policy.default.clone(max_line_length=998))
    message["From"] = sender
    message["To"] = address
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id  # the same on a resend: shown once
    if thread:
        message["In-Reply-To"] = thread
        message["References"] = thread
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = lang
    message.set_content(text)
    message.add_alternative(f"<!doctype html><html lang=\"{escape(lang)}\"><body>{html}"
                            "</body></html>", subtype="html")
    return message


def compose(kind: str, payload: dict[str, Any], *, key: str, address: str, lang: str,
            sender: str, base_url: str, token: str, notice_key: str) -> EmailMessage:
    """One notice as one mail to one person."""
    gettext = translations(lang if lang in LANGUAGES else "en").gettext
    subject, first = _words(kind, payload, gettext)
    proposal = payload.get("proposal", {})
    pid = proposal.get("id", "")
    link = f"{base_url}/proposals/{pid}?lang={lang}"
    unsubscribe = f"{base_url}/mail/unsubscribe?key={quote(key)}&token={token}"
    host = urlsplit(base_url).hostname or "chapter-node"
    reason = payload.get("reason")

    lines = [first]
    if reason:
        lines += ["", reason]
    lines += ["", gettext("Read it and act: %(link)s") % {"link": link}, "", "-- ",
              gettext("You get this because your chapter's node has your address. Stop these "
                      "emails: %(link)s") % {"link": unsubscribe}]
    html = Markup("<p>{}</p>").format(first)
    if reason:
        html += Markup("<blockquote>{}</blockquote>").format(reason)
    html += Markup('<p><a href="{0}">{1}</a></p><hr><p><small>{2} <a href="{3}">{4}</a>'
                   "</small></p>").format(link, gettext("Read it and act"),
                                          gettext("You get this because your chapter's node "
                                                  "has your address."),
                                          unsubscribe, gettext("Stop these emails"))

    digest = hashlib.sha256(f"{notice_key}|{key}".encode()).hexdigest()[:32]
    thread = f"<proposal-{pid}@{host}>" if pid else None  # one proposal, one thread
    return _envelope(sender=sender, address=address, subject=subject, lang=lang,
                     message_id=f"<{digest}@{host}>", thread=thread, unsubscribe=unsubscribe,
                     text="\n".join(lines), html=html)


async def open_session(smtp: Smtp, timeout_s: float):
    """A connected, logged-in aiosmtplib client (STARTTLS or TLS as smtp_url says)."""
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, timeout=timeout_s,
                             use_tls=smtp.tls == "tls", start_tls=smtp.tls == "starttls",
                             tls_context=ssl.create_default_context())
    await client.connect()
    if smtp.username:
        await client.login(smtp.username, smtp.password or "")
    return client


async def deliver_mail_due(store: Store, smtp: Smtp, base_url: str, now_ms: int, *,
                           limit: int = 200, timeout_s: float = 20.0) -> int:
    """Send every due mail delivery once, over one connection; returns how many were sent."""
    import aiosmtplib

    rows = store.due_mail_deliveries(now_ms, limit)
    sent = 0
    recipients = {r["key"]: r for r in store.mail_recipients()}  # read once per round
    digests = _due_digests(store, recipients, now_ms)
    if not rows and not digests:
        return 0
    secret = _secret(store)
    try:
        client = await open_session(smtp, timeout_s)
    except (aiosmtplib.SMTPException, OSError) as e:
        _retry_all(store, rows, now_ms, f"{type(e).__name__}: {e}")
        return 0
    try:
        for did, target, attempts, notice_key, kind, payload in rows:
            key = target.split(":", 1)[1]
            who = recipients.get(key)
            if who is None or who["mode"] == "none":  # unsubscribed or gone since: not sent
                store.mark_delivery(did, "failed", now_ms, attempts + 1, "no longer wants email")
                continue
            message = compose(kind, json.loads(payload), key=key, address=who["address"],
                              lang=who["lang"], sender=smtp.sender, base_url=base_url,
                              token=_token(secret, key), notice_key=notice_key)
            try:
                # flattened here, not by the client: its policy folds long headers again
                await client.sendmail(parseaddr(smtp.sender)[1], [who["address"]],
                                      message.as_bytes(policy=_WIRE))
            except aiosmtplib.SMTPRecipientsRefused as e:
                _refused_or_retry(store, did, attempts, now_ms, e.recipients[0].code
                                  if e.recipients else 550, str(e))
                continue
            except aiosmtplib.SMTPResponseException as e:
                _refused_or_retry(store, did, attempts, now_ms, e.code, e.message)
                if e.code >= 500:
                    continue
                break
            except (aiosmtplib.SMTPException, OSError) as e:
                _retry_all(store, [r for r in rows if r[0] >= did], now_ms,
                           f"{type(e).__name__}: {e}")
                break
            store.mark_delivery(did, "delivered", now_ms, attempts + 1, None)
            sent += 1
        for key, items in digests.items():
            who = recipients[key]
            message = compose_digest(items, key=key, address=who["address"], lang=who["lang"],
                                     sender=smtp.sender, base_url=base_url,
                                     token=_token(secret, key), day_ms=now_ms)
            try:
                await client.sendmail(parseaddr(smtp.sender)[1], [who["address"]],
                                      message.as_bytes(policy=_WIRE))
            except aiosmtplib.SMTPResponseException as e:
                for item in items:
                    _refused_or_retry(store, item[0], item[2], now_ms, e.code, e.message)
                continue
            except (aiosmtplib.SMTPException, OSError) as e:
                _retry_all(store, items, now_ms, f"{type(e).__name__}: {e}")
                break
            store.digest_delivered(key, [(item[0], item[2] + 1) for item in items], now_ms)
            sent += 1
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
    return sent


DAY_MS = 86_400_000


def _due_digests(store: Store, recipients: dict[str, Any], now_ms: int) -> dict[str, list[Any]]:
    """Per person in digest mode whose last digest is a day old: their collected notices."""
    out: dict[str, list[Any]] = {}
    for row in store.due_digest_deliveries(now_ms):
        key = row[1].split(":", 1)[1]
        who = recipients.get(key)
        if who is None or who["mode"] == "none":
            store.mark_delivery(row[0], "failed", now_ms, row[2] + 1, "no longer wants email")
        elif now_ms - who["digest_ms"] >= DAY_MS:
            out.setdefault(key, []).append(row)
    return out


def compose_digest(items: list[Any], *, key: str, address: str, lang: str, sender: str,
                   base_url: str, token: str, day_ms: int) -> EmailMessage:
    """A day's notices in one mail: each notice's subject and link."""
    gettext = translations(lang if lang in LANGUAGES else "en").gettext
    entries = []
    for _, _, _, _, kind, payload in items:
        data = json.loads(payload)
        subject, _ = _words(kind, data, gettext)
        pid = data.get("proposal", {}).get("id", "")
        entries.append((subject, f"{base_url}/proposals/{pid}?lang={lang}"))
    unsubscribe = f"{base_url}/mail/unsubscribe?key={quote(key)}&token={token}"
    host = urlsplit(base_url).hostname or "chapter-node"
    count = len(entries)
    title = translations(lang if lang in LANGUAGES else "en").ngettext(
        "Your day in the federation: %(num)s notice", "Your day in the federation: %(num)s notices",
        count) % {"num": count}
    text = "\n\n".join(f"{s}\n{link}" for s, link in entries)
    text += "\n\n-- \n" + gettext("You get this because your chapter's node has your address. "
                                   "Stop these emails: %(link)s") % {"link": unsubscribe}
    html = Markup("").join(Markup('<p><a href="{0}">{1}</a></p>').format(link, s)
                           for s, link in entries)
    html += Markup('<hr><p><small><a href="{0}">{1}</a></small></p>').format(
        unsubscribe, gettext("Stop these emails"))
    digest = hashlib.sha256(f"digest|{key}|{items[0][3]}".encode()).hexdigest()[:32]
    return _envelope(sender=sender, address=address, subject=title, lang=lang,
                     message_id=f"<{digest}@{host}>", thread=None, unsubscribe=unsubscribe,
                     text=text, html=html)


def _refused_or_retry(store: Store, did: int, attempts: int, now_ms: int, code: int,
                      text: str) -> None:
    if code >= 500:  # refused for good: shown in `chapter-node notices`, never retried
        store.mark_delivery(did, "failed", now_ms, attempts + 1, f"refused: {code} {text}"[:300])
    else:
        _retry(store, did, attempts, now_ms, f"{code} {text}"[:300])


def _retry(store: Store, did: int, attempts: int, now_ms: int, error: str) -> None:
    wait = min(MAX_BACKOFF_MS, 1000 * 2 ** min(attempts, 20))
    store.retry_delivery(did, attempts + 1, now_ms + wait, error)


def _retry_all(store: Store, rows: list[Any], now_ms: int, error: str) -> None:
    log.info("mail server: %s (will retry)", error)
    for row in rows:
        _retry(store, row[0], row[2], now_ms, error)
