"""Operating a node: configuration, metrics, structured logs with request ids."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from node.cli import _register, cli
from node.config import SETTINGS, load_config
from node.dev.devcluster import LocalFederation, Person
from node.protocol.errors import ConfigError

_register()

BAD_VALUES = {
    "listen": "nowhere", "public_url": "ftp://x", "log_format": "xml", "log_level": "loud",
    "pull_interval": "-1", "anti_entropy_interval": "0", "duty_interval": "soon",
    "request_timeout": "inf", "backoff_cap": "nan", "webhooks": '[{"url": "http://x"}]',
    "peers": "0", "clock_skew_ms": "1.5", "smtp_url": "http://mail.example.org",
    "smtp_from": "nobody", "smtp_password": "two\nlines", "smtp_password_file": "relative/path",
}


def test_every_setting_has_a_bad_value_case() -> None:
    assert set(BAD_VALUES) == set(SETTINGS)


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_a_bad_value_names_its_key_and_source(key: str, tmp_path: Path) -> None:
    env = {"CHAPTER_NODE_" + key.upper(): BAD_VALUES[key]}
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env=env)
    assert key in info.value.message and "CHAPTER_NODE_" + key.upper() in info.value.message
    result = CliRunner().invoke(cli, ["config", "show", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2 and key in result.output and "Traceback" not in result.output


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'pull_interval = 7\nlisten = "127.0.0.1:9000"\nlog_format = "json"\n'
        '[[webhooks]]\nurl = "https://hooks.example.org/cn"\nsecret = "0123456789abcdef"\n')
    cfg, sources = load_config(tmp_path, env={"CHAPTER_NODE_PULL_INTERVAL": "3"},
                               flags={"listen": "127.0.0.1:9100", "log_format": None})
    assert (cfg.pull_interval, sources["pull_interval"]) == (3.0, "env CHAPTER_NODE_PULL_INTERVAL")
    assert (cfg.listen, sources["listen"]) == ("127.0.0.1:9100", "flag")
    assert (cfg.log_format, sources["log_format"]) == ("json", str(tmp_path / "config.toml"))
    assert (cfg.anti_entropy_interval, sources["anti_entropy_interval"]) == (30.0, "default")
    assert cfg.webhooks[0].url == "https://hooks.example.org/cn"
    shown = CliRunner().invoke(cli, ["config", "show", "--data-dir", str(tmp_path), "--json"],
                               env={"CHAPTER_NODE_PULL_INTERVAL": "3"})
    rows = {r["key"]: r for r in json.loads(shown.output)}
    assert rows["pull_interval"]["source"] == "env CHAPTER_NODE_PULL_INTERVAL"
    assert rows["webhooks"]["value"][0]["secret"] == "***"  # secrets are never printed
    masked = CliRunner().invoke(cli, ["config", "show", "--data-dir", str(tmp_path), "--json"],
                                env={"CHAPTER_NODE_SMTP_PASSWORD": "hunter2-but-longer"})
    assert "hunter2" not in masked.output
    assert {r["key"]: r for r in json.loads(masked.output)}["smtp_password"]["value"] == "***"


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("pul_interval = 2\n")
    with pytest.raises(ConfigError, match="pul_interval"):
        load_config(tmp_path, env={})
    (tmp_path / "config.toml").write_text("")
    with pytest.raises(ConfigError, match="CHAPTER_NODE_LISTN"):
        load_config(tmp_path, env={"CHAPTER_NODE_LISTN": "x"})
    (tmp_path / "config.toml").write_text("listen = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, env={})


def scrape(fed: LocalFederation, slug: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(fed.nodes[slug].url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_and_request_ids_after_a_sync(tmp_path: Path) -> None:
    amelie, marco, lucia = Person("Amélie", "paris"), Person("Marco", "rome"), Person("Lucía", "rome")
    fed = LocalFederation(tmp_path / "fed", ["paris", "rome"], [amelie, marco, lucia],
                          {"min_open_hours": 1}, pull_interval=0.3, anti_entropy_interval=1,
                          extra_args=["--log-format", "json"]).setup()
    try:
        fed.start_all()
        status, answer, event = fed.act(amelie, "paris", "proposal",
                                        {"title": "Translate the handbook", "text": "", "kind": "action"})
        assert status == 201
        req = urllib.request.Request(fed.nodes["paris"].url + "/api/v1/events/" + event.id,
                                     headers={"X-Request-Id": "trace-me-42"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.headers["X-Request-Id"] == "trace-me-42"
        assert fed.wait_for(lambda: fed.nodes["rome"].get("/api/v1/status")["events"] == 1, 10)
        time.sleep(1.5)  # a reconciliation round too
        paris, rome = scrape(fed, "paris"), scrape(fed, "rome")
        assert paris[("chapter_node_events_accepted_total", (("origin", "client"),))] == 1
        assert rome[("chapter_node_events_accepted_total", (("origin", "peer"),))] == 1
        assert paris[("chapter_node_outbox_depth", (("peer", "rome"),))] == 0
        assert rome[("chapter_node_proposals", (("state", "pending"),))] == 1
        assert paris[("chapter_node_events_held", ())] == rome[("chapter_node_events_held", ())] == 1
        assert paris[("chapter_node_ingest_seconds_count", (("source", "client"),))] == 1
        assert any(k[0] == "chapter_node_negentropy_rounds_total" and v >= 1
                   for k, v in {**paris, **rome}.items())
        refused = fed.act(marco, "rome", "veto", {"proposal": event.id, "reason": "No."})
        assert refused[0] == 403
        assert scrape(fed, "rome")[("chapter_node_events_refused_total",
                                    (("code", "wrong_proposal_kind"),))] == 1
    finally:
        fed.stop_all()
    logs = {s: [json.loads(line) for line in fed.nodes[s].log_path.read_text().splitlines()
                if line.startswith("{")] for s in ("paris", "rome")}
    assert any(e.get("request_id") == "trace-me-42" and e.get("path", "").startswith("/api/v1/events")
               for e in logs["paris"])
    # The id of the round in which Paris pushed is in Rome's access log for that push.
    pushed = {e["request_id"] for e in logs["paris"] if e["message"].startswith("pushed")}
    received = {e.get("request_id") for e in logs["rome"] if e.get("path") == "/federation/v1/events"}
    assert pushed & received


def test_backup_under_load_then_restore_and_converge(tmp_path: Path) -> None:
    amelie, marco = Person("Amélie", "paris"), Person("Marco", "rome")
    fed = LocalFederation(tmp_path / "fed", ["paris", "rome"], [amelie, marco],
                          {"min_open_hours": 1}, pull_interval=0.3, anti_entropy_interval=1).setup()
    runner = CliRunner()
    try:
        fed.start_all()
        first = [fed.act(amelie, "paris", "proposal", {"title": f"Idea {i}", "text": "",
                                                        "kind": "action"})[2].id for i in range(20)]
        backup_file = tmp_path / "paris.backup.db"
        # Taken while the node serves and a client keeps writing.
        stop, written = threading.Event(), []

        def write() -> None:
            while not stop.is_set():
                written.append(fed.act(amelie, "paris", "comment",
                                       {"proposal": first[0], "text": f"busy {len(written)}"})[0])

        writer = threading.Thread(target=write)
        writer.start()
        try:
            time.sleep(0.2)
            result = runner.invoke(cli, ["backup", "--data-dir", str(fed.nodes["paris"].data_dir),
                                         "--out", str(backup_file)])
            time.sleep(0.2)
        finally:
            stop.set()
            writer.join()
        assert result.exit_code == 0, result.output
        assert written and set(written) == {201}
        total = 20 + len(written) + 10
        again = runner.invoke(cli, ["backup", "--data-dir", str(fed.nodes["paris"].data_dir),
                                    "--out", str(backup_file)])
        assert again.exit_code == 2 and "[backup_exists]" in again.output
        # Meanwhile the federation moves on.
        later = [fed.act(marco, "rome", "proposal", {"title": f"Later {i}", "text": "",
                                                      "kind": "action"})[2].id for i in range(10)]
        assert fed.wait_for(lambda: fed.nodes["paris"].get("/api/v1/status")["events"] == total, 10)
        refused = runner.invoke(cli, ["restore", "--data-dir", str(fed.nodes["paris"].data_dir),
                                      "--from", str(backup_file)])
        assert refused.exit_code == 2 and "[node_running]" in refused.output
        fed.kill("paris")
        result = runner.invoke(cli, ["restore", "--data-dir", str(fed.nodes["paris"].data_dir),
                                     "--from", str(backup_file)])
        assert result.exit_code == 0, result.output
        assert fed.nodes["paris"].data_dir.joinpath("node.db").exists()
        fed.start("paris")
        assert fed.wait_for(lambda: fed.nodes["paris"].get("/api/v1/status")["events"] == total, 15)
        for pid in later:
            assert fed.nodes["paris"].get(f"/api/v1/proposals/{pid}")["state"] == "pending"
    finally:
        fed.stop_all()


def test_restore_refuses_another_chapters_backup(tmp_path: Path) -> None:
    amelie = Person("Amélie", "paris")
    fed = LocalFederation(tmp_path / "fed", ["paris", "rome"], [amelie], {}).setup()
    runner = CliRunner()
    rome_backup = tmp_path / "rome.db"
    assert runner.invoke(cli, ["backup", "--data-dir", str(fed.nodes["rome"].data_dir),
                               "--out", str(rome_backup)]).exit_code == 0
    result = runner.invoke(cli, ["restore", "--data-dir", str(fed.nodes["paris"].data_dir),
                                 "--from", str(rome_backup)])
    assert result.exit_code == 2 and "[wrong_backup]" in result.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(cli, ["restore", "--data-dir", str(fed.nodes["paris"].data_dir),
                                 "--from", str(junk)])
    assert result.exit_code == 2 and "[bad_backup]" in result.output


def test_doctor_names_a_readable_key_and_a_down_peer(tmp_path: Path) -> None:
    amelie = Person("Amélie", "paris")
    fed = LocalFederation(tmp_path / "fed", ["paris", "rome", "barcelona"], [amelie], {}).setup()
    runner = CliRunner()
    try:
        fed.start("paris")
        fed.start("rome")  # barcelona stays down
        healthy = runner.invoke(cli, ["doctor", "--data-dir", str(fed.nodes["rome"].data_dir),
                                      "--json"])
        rome = {f["check"]: f for f in json.loads(healthy.output)}
        assert rome["node key permissions"]["level"] == "ok"
        assert rome["store integrity"]["level"] == "ok"
        assert rome["peer paris"]["level"] == "ok"
        assert rome["paris accepts our signature"]["level"] == "ok"
        assert rome["peer barcelona"]["level"] == "fail"
        assert "unreachable" in rome["peer barcelona"]["detail"]
        assert healthy.exit_code == 1
        key = fed.nodes["paris"].data_dir / "node.key"
        key.chmod(0o644)
        sick = runner.invoke(cli, ["doctor", "--data-dir", str(fed.nodes["paris"].data_dir), "--json"])
        paris = {f["check"]: f for f in json.loads(sick.output)}
        assert paris["node key permissions"]["level"] == "fail"
        assert "chmod 600" in paris["node key permissions"]["fix"]
        assert sick.exit_code == 1
    finally:
        fed.stop_all()


class _Receiver:
    """A local webhook target: records every POST; fails the first one to exercise retries."""

    def __init__(self) -> None:
        import http.server

        received = self.received = []
        self.failed_once = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not outer.failed_once:
                    outer.failed_once = True
                    self.send_response(503)
                    self.end_headers()
                    return
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self) -> list[str]:
        return [json.loads(body)["kind"] for _, body in self.received]


def test_webhooks_tell_the_chapter_signed_and_retried(tmp_path: Path) -> None:
    import hashlib
    import hmac

    from node.protocol.times import format_ms

    receiver = _Receiver()
    secret = "paris-webhook-secret-0123"
    people = [Person("Amélie", "paris"), Person("Marco", "rome"), Person("Lucía", "rome")]
    amelie, marco, lucia = people
    fed = LocalFederation(tmp_path / "fed", ["paris", "rome"], people,
                          {"min_open_hours": 4 / 3600, "grace_seconds": 1, "seal_timeout_seconds": 5},
                          pull_interval=0.3, anti_entropy_interval=2).setup()
    fed.env = {"CHAPTER_NODE_WEBHOOKS": json.dumps([{"url": receiver.url, "secret": secret}]),
               "CHAPTER_NODE_DUTY_INTERVAL": "0.3"}
    try:
        fed.start_all()
        now = int(time.time() * 1000)
        consent = fed.act(amelie, "paris", "proposal", {
            "title": "New logo", "text": "", "kind": "consent",
            "closes_at": format_ms(now + 5000)})[2].id
        assert fed.wait_for(lambda: fed.nodes["rome"].get("/api/v1/status")["events"] >= 1, 10)
        assert fed.act(marco, "rome", "veto", {"proposal": consent, "reason": "Ugly."})[0] == 201
        assert fed.act(marco, "rome", "veto_withdraw", {"proposal": consent})[0] == 201
        action = fed.act(lucia, "rome", "proposal", {"title": "Drinks", "text": "", "kind": "action"})[2].id
        assert fed.wait_for(lambda: fed.nodes["paris"].get("/api/v1/status")["events"] >= 4, 10)
        assert fed.act(amelie, "paris", "endorse", {"proposal": action})[0] == 201
        assert fed.act(marco, "paris", "endorse", {"proposal": action})[0] == 201
        wanted = {"proposal_opened", "closing_soon", "veto_filed", "veto_withdrawn",
                  "green_light", "result_final"}
        assert fed.wait_for(lambda: wanted <= set(receiver.kinds()), 25), receiver.kinds()
    finally:
        fed.stop_all()
        receiver.server.shutdown()
    assert receiver.failed_once  # the first delivery failed and was retried
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Chapter-Node-Signature"] == expected
        assert json.loads(body)["chapter"] in ("paris", "rome")
    for chapter in ("paris", "rome"):  # both nodes tell their own chapter, each thing once
        told = [json.loads(b)["kind"] for _, b in receiver.received
                if json.loads(b)["chapter"] == chapter]
        assert told.count("veto_filed") == 1 and told.count("green_light") == 1, (chapter, told)
    veto = next(json.loads(b) for _, b in receiver.received if json.loads(b)["kind"] == "veto_filed")
    assert veto["reason"] == "Ugly." and veto["proposal"]["id"] == consent
    final = next(json.loads(b) for _, b in receiver.received if json.loads(b)["kind"] == "result_final")
    assert final["outcome"] == "adopted" and final["proposal"]["title"] == "New logo"
