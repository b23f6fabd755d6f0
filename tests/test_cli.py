"""The command line: every command documented, keys private, acts signed offline and verified."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node.cli import _register, cli

from .conftest import small_charter

_register()


def all_commands(group: click.Group = cli, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        out.append((prefix + name, command))
        if isinstance(command, click.Group):
            out.extend(all_commands(command, prefix + name + " "))
    return out


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 20, f"{name} has no help text"
    assert "Example" in command.help, f"{name} --help shows no example"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no help text"


def test_keygen_writes_a_private_file_and_prints_the_public_key(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "amelie.key"
    result = runner.invoke(cli, ["keygen", "--out", str(out), "--no-encrypt"])
    assert result.exit_code == 0, result.output
    public = result.output.strip()
    assert len(public) == 43
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert json.loads(out.read_text())["public"] == public
    again = runner.invoke(cli, ["keygen", "--out", str(out), "--no-encrypt"])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "marco.key"
    env = {"CN_PASS": "correct horse"}
    assert runner.invoke(cli, ["keygen", "--out", str(key), "--passphrase-env", "CN_PASS"],
                         env=env).exit_code == 0
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter()))
    args = ["sign", "vote", "--key", str(key), "--charter", str(charter), "--chapter", "rome",
            "--proposal", "a" * 64, "--choice", "yes"]
    ok = runner.invoke(cli, [*args, "--passphrase-env", "CN_PASS"], env=env)
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(cli, [*args, "--passphrase-env", "CN_PASS"], env={"CN_PASS": "nope"})
    assert wrong.exit_code == 2 and "[bad_passphrase]" in wrong.output
    missing = runner.invoke(cli, args)
    assert missing.exit_code == 2 and "[passphrase_required]" in missing.output


def test_world_readable_key_is_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "lucia.key"
    runner.invoke(cli, ["keygen", "--out", str(key), "--no-encrypt"])
    os.chmod(key, 0o644)
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter()))
    result = runner.invoke(cli, ["sign", "endorse", "--key", str(key), "--charter", str(charter),
                                 "--chapter", "paris", "--proposal", "a" * 64])
    assert result.exit_code == 2
    assert "chmod 600" in result.output and "Traceback" not in result.output


def test_sign_then_verify_round_trip_and_tamper(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "amelie.key"
    runner.invoke(cli, ["keygen", "--out", str(key), "--no-encrypt"])
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter()))
    signed = runner.invoke(cli, ["sign", "veto", "--key", str(key), "--charter", str(charter),
                                 "--chapter", "rome", "--proposal", "b" * 64,
                                 "--reason", "Il bilancio non regge."])
    assert signed.exit_code == 0, signed.output
    event = json.loads(signed.stdout)
    assert event["type"] == "veto" and event["body"]["reason"] == "Il bilancio non regge."
    assert "signed for the rome node" in signed.stderr  # says which node takes it
    path = tmp_path / "veto.json"
    path.write_text(signed.stdout)
    verified = runner.invoke(cli, ["verify", str(path), "--charter", str(charter)])
    assert verified.exit_code == 0 and "ok veto" in verified.output
    event["body"]["reason"] = "changed by a node"
    path.write_text(json.dumps(event))
    refused = runner.invoke(cli, ["verify", str(path)])
    assert refused.exit_code == 1 and "[bad_signature]" in refused.output


def test_init_checks_the_charter_names_this_node(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "node.key"
    runner.invoke(cli, ["keygen", "--out", str(key), "--no-encrypt"])
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter()))
    result = runner.invoke(cli, ["init", "--data-dir", str(tmp_path / "d"), "--charter",
                                 str(charter), "--chapter", "paris", "--node-key", str(key)])
    assert result.exit_code == 2 and "[wrong_node_key]" in result.output
    result = runner.invoke(cli, ["init", "--data-dir", str(tmp_path / "d"), "--charter",
                                 str(charter), "--chapter", "lyon", "--node-key", str(key)])
    assert result.exit_code == 2 and "[unknown_chapter]" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    result = runner.invoke(cli, ["init", "--data-dir", str(tmp_path / "d"), "--charter",
                                 str(bad), "--chapter", "paris", "--node-key", str(key)])
    assert result.exit_code == 2 and "[bad_charter]" in result.output
