"""Moved to node/dev/devsim.py (the benchmarks use it too); kept so tests can import it from here."""

from node.dev.devsim import (
    MeasuredNetwork,
    Simulation,
    VirtualClock,
    person_key,
    pub,
    sim_charter,
)

__all__ = ["Simulation", "VirtualClock", "sim_charter", "person_key", "pub", "MeasuredNetwork"]
