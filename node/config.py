"""Operator settings: `config.toml` in the data dir, `CHAPTER_NODE_*` variables, command flags.

Precedence, highest first: a command-line flag, an environment variable, the file, the default.
Every key is declared once in `SETTINGS` (type, default, check, help); loading validates all
of them and names the offending key and where it came from. `chapter-node config show`
prints the effective value of each key with its source.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .protocol.errors import ConfigError

__all__ = ["Config", "Webhook", "SETTINGS", "SECRET_SETTINGS", "load_config", "ENV_PREFIX",
           "WEBHOOK_EVENTS"]

ENV_PREFIX = "CHAPTER_NODE_"
WEBHOOK_EVENTS = ("proposal_opened", "closing_soon", "green_light", "veto_filed",
                  "veto_withdrawn", "result_final")


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str
    events: tuple[str, ...] = WEBHOOK_EVENTS


@dataclass(frozen=True, slots=True)
class Config:
    listen: str = "127.0.0.1:8400"
    public_url: str | None = None
    log_format: str = "human"
    log_level: str = "info"
    pull_interval: float = 5.0
    anti_entropy_interval: float = 30.0
    duty_interval: float = 1.0
    request_timeout: float = 10.0
    backoff_cap: float = 10.0  # both sides of a healed cut back off: this bounds the heal
    peers: int | str = "all"  # "all" registered chapters, or k of them (a random k-out graph)
    webhooks: tuple[Webhook, ...] = field(default_factory=tuple)
    clock_skew_ms: int = 0  # testing only: real nodes with skewed clocks (hardening campaign 8)
    smtp_url: str | None = None  # where the chapter's email goes out (node/notices/mail.py)
    smtp_from: str | None = None
    smtp_password: str | None = None  # a secret: from the environment or smtp_password_file
    smtp_password_file: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class Setting:
    parse: Callable[[Any], Any]
    help: str


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a positive number")
    number = float(value)
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError("must be a positive number")
    return number


def _listen(value: Any) -> str:
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8400")
    return str(value)


def _url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not text.startswith(("http://", "https://")) or " " in text:
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return str(value)

    return parse


def _peers(value: Any) -> int | str:
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError('must be "all" or a whole number of peers, at least 1')


def _skew(value: Any) -> int:
    text = str(value)
    if isinstance(value, bool) or not text.lstrip("-").isascii() or not text.lstrip("-").isdigit() \
            or abs(int(text)) > 86_400_000:
        raise ValueError("must be a whole number of milliseconds, at most a day either way")
    return int(text)


def _webhooks(value: Any) -> tuple[Webhook, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ValueError("must be a JSON list of {url, secret, events}") from e
    if not isinstance(value, list):
        raise ValueError("must be a list of tables with url, secret and optional events")
    hooks = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) - {"url", "secret", "events"}:
            raise ValueError(f"entry {i} must have url, secret and optional events only")
        url = _url(item.get("url"))
        secret = item.get("secret")
        if url is None or not isinstance(secret, str) or len(secret) < 16:
            raise ValueError(f"entry {i} needs a url and a secret of at least 16 characters")
        events = item.get("events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not set(events) <= set(WEBHOOK_EVENTS):
            raise ValueError(f"entry {i}: events must be among {', '.join(WEBHOOK_EVENTS)}")
        hooks.append(Webhook(url, secret, tuple(events)))
    return tuple(hooks)


def _smtp_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    from urllib.parse import urlsplit

    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
        raise ValueError("must be smtp+starttls://[user@]host[:port] (or smtps://, or smtp:// "
                         "for a server on this machine)")
    try:
        parts.port
    except ValueError as e:
        raise ValueError("has a port that is not a number") from e
    return text


def _address(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if "@" not in text or any(c in text for c in "\r\n"):
        raise ValueError('must be an address, e.g. "OuiShare Paris <paris@ouishare.net>"')
    return text


def _secret(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if any(c in str(value) for c in "\r\n"):
        raise ValueError("must be one line")
    return str(value)


def _file(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not os.path.isabs(str(value)):
        raise ValueError("must be an absolute path, e.g. /etc/chapter-node/smtp-password")
    return str(value)


SETTINGS: dict[str, Setting] = {
    "listen": Setting(_listen, "address to serve on, HOST:PORT (put TLS in front)"),
    "public_url": Setting(_url, "the URL peers use for this node (default: the registry's)"),
    "log_format": Setting(_choice("human", "json"), "human lines, or JSON Lines for collectors"),
    "log_level": Setting(_choice("debug", "info", "warning", "error"), "least severe level logged"),
    "pull_interval": Setting(_positive, "seconds between pulls of each peer's changes feed"),
    "anti_entropy_interval": Setting(_positive, "seconds between Negentropy rounds per peer"),
    "duty_interval": Setting(_positive, "seconds between duty rounds (seals, finality, webhooks)"),
    "request_timeout": Setting(_positive, "seconds before a peer request is given up"),
    "backoff_cap": Setting(_positive, "longest wait, in seconds, before retrying a failing peer"),
    "peers": Setting(_peers, '"all" (full mesh) or k: sync with k chapters drawn from this '
                     "node's key (events still reach all by relaying)"),
    "webhooks": Setting(_webhooks, "targets told of decisions: [[webhooks]] url, secret, events"),
    "clock_skew_ms": Setting(_skew, "testing only: move this node's clock by this many "
                             "milliseconds (never in production)"),
    "smtp_url": Setting(_smtp_url, "the mail server for the chapter's email: "
                        "smtp+starttls://user@host:587 or smtps://user@host:465"),
    "smtp_from": Setting(_address, 'the sender of the chapter\'s email, e.g. "OuiShare Paris '
                         '<paris@ouishare.net>"'),
    "smtp_password": Setting(_secret, "the mail server's password: set it in the environment "
                             "(CHAPTER_NODE_SMTP_PASSWORD), never in config.toml; shown masked"),
    "smtp_password_file": Setting(_file, "or a file holding that password (mode 0600)"),
}
SECRET_SETTINGS = frozenset({"smtp_password"})


def load_config(data_dir: str | Path | None, *, env: Mapping[str, str] | None = None,
                flags: Mapping[str, Any] | None = None) -> tuple[Config, dict[str, str]]:
    """The effective configuration and, per key, where its value came from."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources = {name: "default" for name in SETTINGS}
    path = Path(data_dir) / "config.toml" if data_dir is not None else None
    if path is not None and path.is_file():
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid TOML: {e}", code="bad_config") from e
        for key in doc:
            if key not in SETTINGS:
                raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(SETTINGS)})",
                                  code="bad_config")
        if "smtp_password" in doc:
            raise ConfigError(f"{path}: smtp_password does not belong in a file anyone may "
                              "read: set CHAPTER_NODE_SMTP_PASSWORD or smtp_password_file",
                              code="bad_config")
        for key, raw in doc.items():
            values[key] = _parse(key, raw, str(path))
            sources[key] = str(path)
    for key in SETTINGS:
        name = ENV_PREFIX + key.upper()
        if name in env:
            values[key] = _parse(key, env[name], f"environment variable {name}")
            sources[key] = f"env {name}"
    unknown_env = sorted(k for k in env if k.startswith(ENV_PREFIX)
                         and k[len(ENV_PREFIX):].lower() not in SETTINGS)
    if unknown_env:
        raise ConfigError(f"unknown setting {unknown_env[0]} (known: "
                          f"{', '.join(ENV_PREFIX + k.upper() for k in SETTINGS)})",
                          code="bad_config")
    for key, raw in (flags or {}).items():
        if raw is not None:
            values[key] = _parse(key, raw, f"--{key.replace('_', '-')}")
            sources[key] = "flag"
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in values.items() if k in known}), sources


def _parse(key: str, raw: Any, where: str) -> Any:
    try:
        return SETTINGS[key].parse(raw)
    except ValueError as e:
        raise ConfigError(f"{key} ({where}) {e}; got {raw!r}", code="bad_config") from e
