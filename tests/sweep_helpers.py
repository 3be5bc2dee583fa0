"""A plug-in workload for the sweep tests: ``kind: sweep_helpers:Boom``.

pytest puts tests/ on sys.path (rootdir-relative imports, no __init__.py), and the
sweep's forked workers inherit it, so the class imports by module name.
"""

from __future__ import annotations

import os

from sim.units import Duration
from workloads.base import Workload, WorkloadParams


class Boom(Workload):
    """Waits ``at`` seconds, then raises if ``explode`` is set (a point that crashes), or
    ends its process at once if ``die`` is set (a worker killed, say for memory)."""

    kind = "boom"

    class Params(WorkloadParams):
        explode: bool = False
        die: bool = False
        at: Duration = 0.1

    def run(self):
        yield self.env.timeout(self.params.at)
        if self.params.die:
            os._exit(3)
        if self.params.explode:
            raise RuntimeError("boom: this sweep point was told to crash")


def die_on(item: str) -> str:
    """An executor item: ``"die"`` ends its worker process after a second (the others
    have reached the worker by then), anything else comes back as it is."""
    if item == "die":
        import time

        time.sleep(1.0)
        os._exit(3)
    return item
