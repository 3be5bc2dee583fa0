"""``trace``: replay an ftrace kmem trace as a workload of a running machine.

The events go to the machine's own zone and slab caches through ``sim.replay.Replayer``
(pairing by ptr, kernel kmalloc routing, slab page events left to the slab model, the
trace holding its live objects): timestamps drive simulated time, scaled by ``speed``,
from the workload's start. Page events go through the machine's full allocation path.
``slabinfo`` (a snapshot taken before the trace) fills the caches first; frees of
objects the trace never allocated take from that population.

``fragsim replay`` is the same replay on a machine built from /proc snapshots alone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from workloads.base import Workload, WorkloadParams


class TraceReplay(Workload):
    kind = "trace"

    class Params(WorkloadParams):
        path: str = Field(description="ftrace text output: plain, .gz or .xz")
        slabinfo: str | None = Field(None, description="a /proc/slabinfo from before")
        occupancy: Literal["even", "packed"] = "even"
        speed: float = Field(1.0, gt=0)

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.replayer = None
        self.reader = None
        machine.register_page_owner(self.migrate_page)

    def migrate_page(self, old: int, new: int, order: int) -> bool:
        return self.replayer is not None and self.replayer.migrate_page(old, new, order)

    def run(self):
        from sim.ftrace import TraceReader
        from sim.procfs import parse_slabinfo
        from sim.replay import Replayer
        from sim.snapshot import populate_from_slabinfo

        p = self.params
        m = self.machine
        env = self.env
        population = None
        if p.slabinfo is not None:
            try:
                with open(p.slabinfo, encoding="utf-8") as f:
                    text = f.read()
            except OSError as err:
                raise ValueError(f"{p.slabinfo}: cannot read: {err.strerror}") from None
            population = populate_from_slabinfo(m.caches, parse_slabinfo(text, p.slabinfo),
                                                p.occupancy)
        replayer = self.replayer = Replayer(
            m.zone, m.caches, population=population, speed=p.speed, start=env.now,
            seed=m.seed, page_allocator=m.alloc_pages, page_free=m.free_pages)
        self.reader = TraceReader(p.path)
        replayer.feed(self.reader)
        while (t := replayer.next_time()) is not None:
            yield env.timeout(max(t - env.now, p.tick))
            replayer.events_until(env.now)
        replayer.advance(env.now)

    def summary(self) -> dict[str, Any]:
        if self.replayer is None or self.reader is None:
            return {}
        stats = self.reader.stats
        return {"events": stats.events, "bad_lines": stats.bad_lines, "span_s": stats.span_s,
                "complete": stats.complete, "error": stats.error,
                "replay": self.replayer.stats.as_dict()}
