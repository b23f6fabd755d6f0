"""Email: one notice to 2,000 members through a local SMTP server, against that server's own
accept rate.

What is measured: a chapter of 2,000 members with addresses; one proposal is opened; the
node queues one delivery per member (node.notices.webhooks.Notices) and sends them
(node.notices.mail.deliver_mail_due: compose in the member's language, send, commit each delivery).
The limit beside it: the same aiosmtpd server on loopback taking 2,000 already-built
messages of the same size from one aiosmtplib connection, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from .common import Context, Row, log

__all__ = ["run"]


class _Count:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        return "250 OK"


def run(ctx: Context) -> list[Row]:
    from aiosmtpd.controller import Controller

    from node.chapter.chapter_node import ChapterNode
    from node.dev.devcluster import free_port
    from node.notices.mail import Smtp, deliver_mail_due
    from node.notices.webhooks import Notices
    from node.operations.datadir import init_data_dir
    from node.protocol.events import b64url, sign_event
    from node.protocol.keys import write_key_file
    from node.protocol.times import format_ms
    from tests.conftest import person_key, small_charter

    members = ctx.size(2000, 50)
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="mail-"))
    counter = _Count()
    controller = Controller(counter, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        charter = root / "charter.json"
        charter.write_text(json.dumps(small_charter(min_open_hours=1)))
        key = root / "paris-node.key"
        write_key_file(key, person_key("node paris"))
        d = init_data_dir(root / "paris", charter, "paris", key)
        node = ChapterNode(d.store(), d.charter(), "paris", d.node_key())
        now = node.clock()
        langs = ("en", "fr", "es", "it", "pt")
        for i in range(members):
            person = b64url(bytes(person_key(f"member {i}").verify_key))
            node.member_add(person, f"Member {i}", f"member{i}@example.org", now)
            node.store.set_mail(person, lang=langs[i % 5], now_ms=now)
        smtp = Smtp("127.0.0.1", controller.port, "none", None, None, "Paris <p@example.org>")
        notices = Notices(node.store, "paris", [], mail=True)  # before: it starts from now
        event = sign_event(federation=node.charter.id, type="proposal", chapter="paris",
                           created_at=format_ms(node.clock()),
                           body={"title": "Adopt the 2027 budget", "text": "", "kind": "action"},
                           signing_key=person_key("amelie"))
        node.submit(event.canonical, node.clock())
        log(f"mail: one notice to {members:,} members")
        t0 = time.perf_counter()
        notices.collect(node.clock())
        sent = 0
        while sent < members:
            got = asyncio.run(deliver_mail_due(node.store, smtp, "https://paris.example.org",
                                               node.clock()))
            if got == 0:
                raise RuntimeError(f"mail: stuck after {sent} of {members}")
            sent += got
        ours = sent / (time.perf_counter() - t0)
        assert counter.n == members

        log("mail: the server's own accept rate, same messages, one connection")
        from node.notices.mail import compose

        sample = compose("proposal_opened", {"proposal": {"id": event.id, "title": "x"}},
                         key="k", address="a@example.org", lang="fr", sender=smtp.sender,
                         base_url="https://paris.example.org", token="0" * 32, notice_key="n")
        raw = sample.as_bytes()
        limit = asyncio.run(_raw_rate(controller.port, raw, members))
        node.store.close()
    finally:
        controller.stop()
        shutil.rmtree(root, ignore_errors=True)
    return [Row("mail", f"one notice to {members:,} members: queued, composed, sent and "
                "committed one by one", ours, "mails/s", "aiosmtpd accepting the same "
                "messages from one connection", limit,
                note="mails in five languages; each delivery committed after the server's 250")]


async def _raw_rate(port: int, raw: bytes, n: int) -> float:
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    t0 = time.perf_counter()
    for i in range(n):
        await client.sendmail("p@example.org", [f"member{i}@example.org"], raw)
    rate = n / (time.perf_counter() - t0)
    await client.quit()
    return rate
