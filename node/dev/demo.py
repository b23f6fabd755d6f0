"""`make demo`: three chapters on loopback carry a proposal, a veto, a green light and a
delegated vote to one reconciled tally.

Paris, Rome and Barcelona each run a real `chapter-node run` process. Connectors sign their
own acts and submit them through whichever node they like; one node is killed with SIGKILL
in the middle of the vote and restarted; at close every node seals what it holds, and all three
end with the same final `tally_hash`. Short windows (seconds, not days) keep it under a minute.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..protocol.keys import write_key_file
from ..protocol.times import format_ms, wall_clock_ms
from .devcluster import LocalFederation, Person

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)

AMELIE = Person("Amélie", "paris")
JONAS = Person("Jonas", "paris")
MARCO = Person("Marco", "rome")
SOFIA = Person("Sofia", "rome")
LUCIA = Person("Lucía", "barcelona")
CONNECTORS = [AMELIE, JONAS, MARCO, SOFIA, LUCIA]
JEANNE = Person("Jeanne", "paris")  # a member, not a Connector: she comments, never vetoes

OPEN_S = 15  # how long the consent and vote proposals stay open
RULES = {"min_open_hours": OPEN_S / 3600, "grace_seconds": 2, "seal_timeout_seconds": 20,
         "quorum": 0.5, "action_endorsements": 3}


def step(text: str) -> None:
    console.print(f"[bold cyan]▸[/] {text}")


def ok(text: str) -> None:
    console.print(f"  [green]✓[/] {text}")


def submit(fed: LocalFederation, who: Person, via: str, type_: str, body: dict[str, Any]) -> str:
    status, answer, event = fed.act(who, via, type_, body)
    if status not in (200, 201):
        raise SystemExit(f"{who.name}'s {type_} through {via} was refused: {answer}")
    ok(f"{who.name} ({who.chapter}) → {type_} through [bold]{via}[/] node: {event.id[:12]}…")
    return event.id


def everywhere(fed: LocalFederation, pid: str, predicate, what: str, timeout: float = 20) -> None:
    def check() -> bool:
        return all(predicate(fed.proposal(slug, pid)) for slug, node in fed.nodes.items()
                   if node.process is not None)

    if not fed.wait_for(check, timeout):
        raise SystemExit(f"timed out waiting until {what}")
    ok(what)


DEMO_PASSPHRASE = "demo passphrase"  # seals the demo key files `--serve` writes; demo only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.dev.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true",
                        help="keep the three nodes up after the story, with their web pages, "
                             "until Ctrl-C")
    args = parser.parse_args(argv)
    # `kill`, a service manager or a closed terminal stops the demo as Ctrl-C does: through
    # the `finally` below, so its three node processes never outlive it.
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop_by_signal)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chapter-node-demo-") as tmp:
        fed = LocalFederation(Path(tmp), ["paris", "rome", "barcelona"], CONNECTORS, RULES,
                              pull_interval=0.5, anti_entropy_interval=3)
        try:
            code = run(fed, started)
            if args.serve and code == 0:
                serve_until_interrupted(fed, Path(tmp))
            return code
        finally:
            fed.stop_all()
            console.print("[dim]all three nodes stopped; nothing left running[/]")


def _stop_by_signal(number: int, _frame: object) -> None:
    raise SystemExit(128 + number)


def key_file_name(person: Person) -> str:
    """amelie.key for Amélie: a name anyone can type."""
    ascii_name = unicodedata.normalize("NFKD", person.name).encode("ascii", "ignore").decode()
    return f"{ascii_name.lower()}.key"


def serve_until_interrupted(fed: LocalFederation, folder: Path) -> None:
    """Leave something to click: each node's web address and a key file per Connector."""
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    for person in CONNECTORS + [JEANNE]:
        path = keys / key_file_name(person)
        if not path.exists():
            write_key_file(path, person.key, passphrase=DEMO_PASSPHRASE)
    node = fed.nodes[JEANNE.chapter]
    member = subprocess.run(
        [sys.executable, "-m", "node", "member", "add", "--data-dir", str(node.data_dir),
         "--key", JEANNE.public, "--name", JEANNE.name], check=False, capture_output=True,
        text=True)
    console.print()
    step("The three nodes stay up. Open a web page, import a key, act:")
    for slug, node in fed.nodes.items():
        console.print(f"  {slug:<10} {node.url}/")
    step(f"Key files to import (passphrase: [bold]{DEMO_PASSPHRASE}[/]):")
    for person in CONNECTORS + [JEANNE]:
        role = "Connector" if person in CONNECTORS else "member (not a Connector)"
        console.print(f"  {keys / key_file_name(person)}  {person.name}, "
                      f"{person.chapter}, {role}")
    if member.returncode != 0:
        console.print(f"[yellow]Jeanne could not be vouched for: {member.stderr.strip()}[/]")
    console.print("[dim]Ctrl-C stops the three nodes.[/]")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print()


def run(fed: LocalFederation, started: float) -> int:
    step("Creating the federation: a charter naming paris, rome, barcelona and five Connectors")
    fed.setup()
    fed.start_all()
    for slug, node in fed.nodes.items():
        ok(f"{slug} node serving on {node.url}")

    now = wall_clock_ms()
    closes = format_ms(now + OPEN_S * 1000 + 1500)

    step("Strategic decision (consent): Amélie proposes through Paris")
    consent = submit(fed, AMELIE, "paris", "proposal", {
        "title": "Adopt the 2027 gathering budget", "text": "See the budget sheet.",
        "kind": "consent", "closes_at": closes})
    step("Vote (last resort) opened by Amélie, with delegations")
    vote = submit(fed, AMELIE, "paris", "proposal", {
        "title": "Choose Lisbon for the 2027 gathering", "text": "Yes = Lisbon.",
        "kind": "vote", "closes_at": closes})
    everywhere(fed, consent, lambda r: True, "the consent proposal reached all three chapters")
    everywhere(fed, vote, lambda r: True, "the vote reached all three chapters")

    step("Marco (Rome) vetoes through the Rome node, stating his strong objection")
    submit(fed, MARCO, "rome", "veto", {"proposal": consent,
                                        "reason": "The budget leaves out the new chapters."})
    everywhere(fed, consent, lambda r: r["tally"]["vetoes"] == 1,
               "every chapter sees the standing veto (provisional outcome: vetoed)")

    step("Day-to-day action (3-Connectors rule): Lucía proposes through Barcelona")
    action = submit(fed, LUCIA, "barcelona", "proposal", {
        "title": "Run a OuiShare Drinks in Barcelona", "text": "Next Thursday.", "kind": "action"})
    everywhere(fed, action, lambda r: r["state"] == "pending", "the action reached every chapter")
    submit(fed, MARCO, "rome", "endorse", {"proposal": action})
    submit(fed, JONAS, "paris", "endorse", {"proposal": action})
    everywhere(fed, action, lambda r: r["tally"]["outcome"] == "adopted" and r["final"],
               "green light on the third Connector — every chapter is told")

    step("Delegations: Jonas gives his vote to Amélie (all proposals); Sofia to Marco (this one)")
    submit(fed, JONAS, "paris", "delegation", {"to": AMELIE.public, "proposal": None})
    submit(fed, SOFIA, "barcelona", "delegation", {"to": MARCO.public, "proposal": vote})

    step("The Rome node is killed (SIGKILL) in the middle of the vote")
    fed.kill("rome")
    ok("rome is down")
    submit(fed, AMELIE, "paris", "vote", {"proposal": vote, "choice": "yes"})
    submit(fed, LUCIA, "barcelona", "vote", {"proposal": vote, "choice": "yes"})
    step("Rome restarts and catches up from its peers")
    fed.start("rome")
    ok("rome is back")
    submit(fed, MARCO, "rome", "vote", {"proposal": vote, "choice": "no"})

    step("Marco withdraws his veto after the discussion")
    submit(fed, MARCO, "rome", "veto_withdraw", {"proposal": consent})
    everywhere(fed, consent, lambda r: r["tally"]["vetoes"] == 0,
               "no standing veto anywhere")

    wait_s = max(0.0, (wall_clock_ms() - now) / -1000 + OPEN_S + 1.5)
    step(f"Waiting for the close, the grace window and the seals (~{wait_s + 3:.0f} s)")
    for pid, what in ((consent, "consent proposal"), (vote, "vote")):
        everywhere(fed, pid, lambda r: r["final"], f"{what} final on every node (3 seals each)",
                   timeout=wait_s + 30)

    return summary(fed, [("consent", consent), ("action", action), ("vote", vote)], started)


def summary(fed: LocalFederation, proposals: list[tuple[str, str]], started: float) -> int:
    table = Table(title="Final results, as each chapter's node reports them")
    for col in ("proposal", "node", "outcome", "tally", "final", "seals", "tally_hash"):
        table.add_column(col)
    agreed = True
    for label, pid in proposals:
        hashes = set()
        for slug in fed.nodes:
            r = fed.proposal(slug, pid)
            t = r["tally"]
            counts = (f"yes {t['yes']} no {t['no']} abstain {t['abstain']} not cast {t['not_cast']}"
                      if label == "vote" else
                      f"vetoes {t['vetoes']} endorsements {t['endorsements']}")
            table.add_row(label, slug, t["outcome"], counts, str(r["final"]),
                          str(len(r["seals"])), r["tally_hash"][:16] + "…")
            hashes.add(r["tally_hash"])
        agreed &= len(hashes) == 1
    console.print(table)
    elapsed = time.monotonic() - started
    if agreed:
        console.print(f"[bold green]All three chapters agree on every tally_hash[/] "
                      f"({elapsed:.0f} s)")
        return 0
    console.print("[bold red]The chapters disagree[/]")
    return 1


if __name__ == "__main__":
    sys.exit(main())
