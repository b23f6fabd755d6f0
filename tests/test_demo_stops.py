"""The demo leaves nothing running however it is stopped: a terminal closed or a `kill` stops
its three nodes as Ctrl-C does (README: "Ctrl-C stops everything")."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_killed_demo_stops_its_three_nodes(stop: signal.Signals) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "node.dev.demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    ports: list[int] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            found = re.search(r"node serving on http://127\.0\.0\.1:(\d+)", line)
            if found:
                ports.append(int(found.group(1)))
            if len(ports) == 3:
                break
        assert len(ports) == 3 and all(_answers(p) for p in ports)
        demo.send_signal(stop)
        rest = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 128 + stop
    assert "all three nodes stopped" in rest
    deadline = time.monotonic() + 5
    while any(_answers(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_answers(p) for p in ports)
