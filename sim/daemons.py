"""The kernel threads and timers of a machine, as SimPy processes: every process that
is not a workload is here.

- ``Kswapd``: mm/vmscan.c ``kswapd``: sleeps until woken (``wakeup_kswapd``: an
  allocation below the low watermark, or a watermark boost), then, unless the zone is
  balanced and unboosted, runs ``Reclaim.balance_pgdat`` and sleeps each round's cost;
  afterwards it clears the boost and wakes kcompactd at pageblock order (after a boost)
  or at the order it was woken for, and resets compaction's skip hints
  (``reset_isolation_suitable``).
- ``Kcompactd``: mm/compaction.c ``kcompactd``: woken by kswapd for an order
  (``kcompactd_do_work``), otherwise the proactive check every 500 ms
  (``proactive_compact``, which says when to look again: 32 s after a pass that did not
  lower the score). Compaction itself is in sim/compaction.py; kcompactd sleeps its
  cost.
- ``vmstat_refresh``: once a second, ``refresh_cpu_vm_stats`` and its
  ``decay_pcp_high`` (``Zone.vmstat_refresh``).
- ``rcu_tick``: RCU callbacks of the slab caches (``call_rcu`` frees) applied every
  10 ms while any are pending, backing off to 1 s when none are.

The sampler is the run loop in sim/runner.py, which advances the environment from one
sample time to the next.

Departures from 6.18 are those of sim/vmscan.py's ``balance_pgdat`` (kswapd balances at
order 0, one zone, no ``kswapd_try_to_sleep`` with its ``wakeup_kcompactd``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import simpy

from sim.buddy import Zone
from sim.compaction import Compactor
from sim.slab import SlabCaches
from sim.vmscan import Reclaim

VMSTAT_INTERVAL = 1.0  # vm.stat_interval, seconds
RCU_TICK = 0.01
KCOMPACTD_INTERVAL = 0.5  # HPAGE_FRAG_CHECK_INTERVAL_MSEC


@dataclass
class DaemonStats:
    runs: int = 0
    time_s: float = 0.0

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_{f.name}": getattr(self, f.name) for f in fields(self)}


class Kswapd:
    """kswapd for one node (see the module docstring)."""

    def __init__(self, env: simpy.Environment, zone: Zone, reclaim: Reclaim,
                 compactor: Compactor, wakeup_kcompactd: Callable[[int], None],
                 enabled: bool = True) -> None:
        self.env = env
        self.zone = zone
        self.reclaim = reclaim
        self.compactor = compactor
        self.wakeup_kcompactd = wakeup_kcompactd
        self.enabled = enabled
        self.running = False
        self.stats = DaemonStats()
        self._order = 0
        self._event = env.event()

    def wakeup(self, order: int = 0) -> None:
        """``wakeup_kswapd``: remember the highest order asked for, and wake."""
        if not self.enabled:
            return
        self._order = max(self._order, order)
        if not self._event.triggered:
            self._event.succeed()

    def run(self):
        zone = self.zone
        env = self.env
        while True:
            yield self._event
            self._event = env.event()
            order, self._order = self._order, 0
            if self.reclaim.pgdat_balanced() and not zone.watermark_boost:
                continue
            self.stats.runs += 1
            self.running = True
            zone.zone_reclaim_active = True
            boosted = zone.watermark_boost > 0
            started = env.now
            for cost in self.reclaim.balance_pgdat():
                yield env.timeout(cost)
            self.stats.time_s += env.now - started
            zone.zone_reclaim_active = False
            self.running = False
            if boosted:
                zone.watermark_boost = 0
                self.wakeup_kcompactd(zone.pageblock_order)
            elif order:
                self.wakeup_kcompactd(order)
            self.compactor.reset_isolation_suitable()


class Kcompactd:
    """kcompactd for one node (see the module docstring)."""

    def __init__(self, env: simpy.Environment, compactor: Compactor,
                 enabled: bool = True) -> None:
        self.env = env
        self.compactor = compactor
        self.enabled = enabled
        self.stats = DaemonStats()
        self._order = -1
        self._event = env.event()

    def wakeup(self, order: int) -> None:
        """``wakeup_kcompactd``: remember the highest order asked for, and wake."""
        if not self.enabled:
            return
        self._order = max(self._order, order)
        if not self._event.triggered:
            self._event.succeed()

    def run(self):
        env = self.env
        compactor = self.compactor
        timeout = KCOMPACTD_INTERVAL
        while True:
            woken = self._event
            yield woken | env.timeout(timeout)
            before = compactor.stats.time_s
            if woken.triggered:
                self._event = env.event()
                order, self._order = self._order, -1
                if order > 0:
                    compactor.kcompactd_do_work(order)
                    self.stats.runs += 1
                timeout = KCOMPACTD_INTERVAL
            else:
                step = compactor.proactive_compact()
                timeout = step.next_check_s
                if step.ran:
                    self.stats.runs += 1
            cost = compactor.stats.time_s - before
            if cost > 0:
                self.stats.time_s += cost
                yield env.timeout(cost)


def vmstat_refresh(env: simpy.Environment, zone: Zone):
    while True:
        yield env.timeout(VMSTAT_INTERVAL)
        zone.vmstat_refresh()


def rcu_tick(env: simpy.Environment, caches: SlabCaches):
    idle = RCU_TICK
    while True:
        yield env.timeout(idle)
        if any(cache.nr_rcu_pending for cache in caches):
            caches.rcu_advance(env.now)
            idle = RCU_TICK
        else:
            idle = min(idle * 2, 1.0)
