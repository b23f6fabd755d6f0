"""The one place campaigns 9 and 10 import the in-memory simulation from.

`tests/support/memnet.py` today; if it moves (e.g. to `node/dev/devsim.py`, same API), only these
lines change.
"""

from __future__ import annotations

from tests.support.memnet import Simulation, VirtualClock, person_key, pub, sim_charter

__all__ = ["Simulation", "VirtualClock", "person_key", "pub", "sim_charter"]
