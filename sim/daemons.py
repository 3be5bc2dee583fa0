"""The kernel threads and timers of a machine, as SimPy processes: every process that
is not a workload is here.

- ``Kswapd``: mm/vmscan.c ``kswapd`` and ``kswapd_try_to_sleep``, with the
  synchronous rules in sim/vmscan.py ``Reclaim``. Woken by ``wakeup_kswapd`` (the
  allocation slow path's ``wake_all_kswapds``, or rmqueue after a watermark boost)
  unless the zone is balanced for the order and unboosted (then kcompactd is woken
  instead for a caller that cannot reclaim directly). It reads and clears the order
  asked for and runs ``Reclaim.balance_pgdat(order)``, sleeping each step's cost (a
  step is one batch of the LRU, whose folios the kernel frees at the batch's end, or
  one pass of the shrinkers);
  when reclaim fell back to order 0 (``compact_gap``) it goes to sleep for order 0 and
  wakes kcompactd for the order asked. Going to sleep on a balanced zone resets
  compaction's skip hints (``reset_isolation_suitable``), wakes kcompactd
  (``wakeup_kcompactd(alloc_order)``), naps HZ/10 = 100 ms (a SimPy timeout raced
  against the wake event: a wake during the nap is the kernel's "premature" wake,
  ``remaining`` > 0) and then, still balanced and not woken, sleeps until woken. On
  an unbalanced zone it does not sleep: it runs ``balance_pgdat`` again at once
  (each run costs simulated time; a hopeless zone, ``kswapd_failures`` >=
  MAX_RECLAIM_RETRIES, lets it sleep). On a machine of two CPUs or more kswapd also
  runs while a direct compaction on another CPU takes its time
  (``run_concurrently``, called by sim/compaction.py's hook with the simulated time
  the compacting task has reached; the hook, sim/page_alloc.py ``OtherCpus``, leaves
  out the calls that kswapd has said would find nothing to do, ``_publish``): a
  kswapd the slow path has just woken starts its ``balance_pgdat`` at the wake, and
  every step that starts before that time is run then, its cost slept afterwards by
  kswapd's own process (which does not run them again). A wake by a slow path that
  has already stalled (its retry loop wakes kswapd again) starts kswapd at that task's
  time, not at the slow path's start. As
  everywhere here, a step's work is done at its start (the kernel frees a batch's
  folios at its end, one batch later); work that starts at the compaction's own time
  is not seen by it. kswapd's frees go where fragsim's reclaim frees, to CPU 0's
  per-CPU list (sim/objects.py): a direct compaction on CPU 0 that drains its list
  later can capture them, where the kernel's kswapd frees on its own CPU. Departures:
  kswapd is taken to have
  a CPU to itself whenever there are two (no scheduler, no other runnable task); the
  concurrent run stops at the end of the current ``balance_pgdat`` (the sleep that
  follows and a run after it wait for the process); kcompactd does not run beside a
  direct compaction.
- ``Kcompactd``: mm/compaction.c ``kcompactd`` and ``wakeup_kcompactd``: woken for an
  order (by kswapd going to sleep, after a boosted ``balance_pgdat`` at pageblock
  order, or by ``wakeup_kswapd`` on a balanced zone) when ``kcompactd_node_suitable``;
  an order recorded without a wake is done at the next timeout, as
  ``wait_event_freezable_timeout`` re-checks ``kcompactd_work_requested``. Otherwise
  the proactive check every 500 ms (``proactive_compact``, which says when to look
  again: 32 s after a pass that did not lower the score; no timeout with
  proactiveness 0). Compaction itself is in sim/compaction.py; kcompactd sleeps its
  cost.
- ``Khugepaged``: mm/khugepaged.c ``khugepaged``, ``khugepaged_do_scan`` and
  ``khugepaged_wait_work`` for one anonymous workload's mm: a scan of up to
  ``pages_to_scan`` (sim/khugepaged.py ``KhugepagedScan.scan_mm_slot``, called again
  after each collapse until the pages are used or the scan has passed the list head
  twice), then ``scan_sleep``. The first failed huge page allocation of a scan sleeps
  ``alloc_sleep`` (``khugepaged_alloc_sleep``) and the scan goes on; the second ends it.
  It starts with its workload, as if the mm were registered when its VMA was mapped,
  and ends when the workload has freed its memory at stop (the mm is gone).
- ``vmstat_refresh``: once a second, ``refresh_cpu_vm_stats`` and its
  ``decay_pcp_high`` (``Zone.vmstat_refresh``).
- ``rcu_tick``: RCU callbacks of the slab caches (``call_rcu`` frees) applied every
  10 ms while any are pending, backing off to 1 s when none are.

The sampler is the run loop in sim/runner.py, which advances the environment from one
sample time to the next.

Zones: kswapd and kcompactd are per node. kswapd reads and clears
``kswapd_highest_zoneidx`` with the order (``kswapd_highest_zoneidx(pgdat, prev)``) and
balances the zones up to it; given a ``NodeCompactor`` (sim/compaction.py), kcompactd
and kswapd's ``reset_isolation_suitable`` cover every zone of the node.

Departures from 6.18: one khugepaged per anonymous workload (the kernel has one
thread scanning every registered mm in turn with one ``pages_to_scan`` budget; with one
THP workload the two agree); kcompactd compacts every zone of the node whatever
classzone woke it; no freezer, no
``proactive_compact_trigger`` (the sysctl write), no per-CPU vmstat thresholds
(``set_pgdat_percpu_threshold``); the rest are sim/vmscan.py's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, fields

import simpy

from sim.buddy import Zone
from sim.compaction import Compactor
from sim.khugepaged import KhugepagedScan, ScanResult
from sim.page_alloc import OtherCpus
from sim.slab import SlabCaches
from sim.vmscan import Reclaim

VMSTAT_INTERVAL = 1.0  # vm.stat_interval, seconds
RCU_TICK = 0.01
KCOMPACTD_INTERVAL = 0.5  # HPAGE_FRAG_CHECK_INTERVAL_MSEC
KSWAPD_SHORT_SLEEP = 0.1  # kswapd_try_to_sleep's schedule_timeout(HZ/10)


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
        self.running = False  # in balance_pgdat (kswapd_is_running)
        self.sleeping = False  # on kswapd_wait: in the short or the full sleep
        self.stats = DaemonStats()
        self.short_sleeps = 0  # kswapd_try_to_sleep's HZ/10 naps
        self.full_sleeps = 0  # kswapd_try_to_sleep's schedule() until woken
        self.concurrent_steps = 0  # balance_pgdat steps run during a direct compaction
        self._event = env.event()
        self._napping = False  # in the HZ/10 nap (a wake there is premature)
        # The waking task's clock (sim/machine.py: a slow path's time includes what it
        # has stalled), and when the last wake came by it.
        self.clock: Callable[[], float] = lambda: env.now
        self._woken_at = 0.0
        # kswapd's loop variables, kept here so that a direct compaction on another CPU
        # can start a woken kswapd before its process resumes (``run_concurrently``).
        self._alloc_order = 0
        self._reclaim_order = 0
        self._highest_zoneidx = -1
        # The balance_pgdat in progress: its steps, when the current step ends, its
        # start, and the order it returned (None while it runs).
        self._steps: Generator[float, None, int] | None = None
        self._busy_until = 0.0
        self._started = 0.0
        self._done: int | None = None
        # The direct compactions' hook (sim/page_alloc.py OtherCpus), told up to when
        # run_concurrently has nothing to do (``_publish``); set by the engine.
        self.gate: OtherCpus | None = None

    def wakeup(self, order: int = 0, direct_reclaim: bool = False,
               highest_zoneidx: int = -1) -> None:
        """``wakeup_kswapd``: ``Reclaim.wakeup_kswapd`` decides (it records the order,
        and may wake kcompactd instead); wake a sleeping kswapd when it says so.
        ``direct_reclaim``: the caller's gfp has ``__GFP_DIRECT_RECLAIM`` (the
        ZONE_BOOSTED_WATERMARK wake from rmqueue passes gfp 0). ``highest_zoneidx``
        is the request's classzone (-1: the node's highest zone)."""
        if not self.enabled:
            return
        if (self.reclaim.wakeup_kswapd(order, direct_reclaim, self.sleeping,
                                       highest_zoneidx)
                and not self._event.triggered):
            self._woken_at = self.clock()
            self._event.succeed()

    def _sleep(self, timeout: float | None):
        """Sleep on kswapd_wait until woken, or ``timeout`` seconds; True if woken."""
        woken = self._event
        self.sleeping = True
        self._napping = timeout is not None
        if timeout is None:
            yield woken
        else:
            yield woken | self.env.timeout(timeout)
        self.sleeping = False
        if woken.triggered:
            self._event = self.env.event()
            return True
        return False

    def _premature_wake(self) -> None:
        """A wake during the HZ/10 nap keeps the classzone and the order it was
        sleeping for."""
        reclaim = self.reclaim
        if reclaim.kswapd_highest_zoneidx < 0:
            reclaim.kswapd_highest_zoneidx = self._highest_zoneidx
        if reclaim.kswapd_order < self._reclaim_order:
            reclaim.kswapd_order = self._reclaim_order

    def try_to_sleep(self, alloc_order: int, reclaim_order: int, highest_zoneidx: int = -1):
        """``kswapd_try_to_sleep``: on a zone balanced for ``reclaim_order`` (or a
        hopeless one), reset compaction's skip hints, wake kcompactd for
        ``alloc_order``, and nap HZ/10 (100 ms); if nobody woke it meanwhile and the
        zone is still balanced, sleep until woken. A premature wake keeps
        ``reclaim_order`` as the order to balance for. Returns without sleeping when
        the zone is not balanced: kswapd reclaims again at once::

            if (prepare_kswapd_sleep(pgdat, reclaim_order, highest_zoneidx)) {
                reset_isolation_suitable(pgdat);
                wakeup_kcompactd(pgdat, alloc_order, highest_zoneidx);
                remaining = schedule_timeout(HZ/10);
                if (remaining) {
                    ...
                    if (READ_ONCE(pgdat->kswapd_order) < reclaim_order)
                        WRITE_ONCE(pgdat->kswapd_order, reclaim_order);
                }
                ...
            }
            if (!remaining &&
                prepare_kswapd_sleep(pgdat, reclaim_order, highest_zoneidx)) {
                ...
                schedule();

        When a direct compaction started the woken kswapd before this process resumed
        (``run_concurrently``), that did what follows the wake; this returns at once.
        """
        reclaim = self.reclaim
        remaining = False
        if reclaim.prepare_kswapd_sleep(reclaim_order, highest_zoneidx):
            self.compactor.reset_isolation_suitable()
            self.wakeup_kcompactd(alloc_order)
            self.short_sleeps += 1
            remaining = yield from self._sleep(KSWAPD_SHORT_SLEEP)
            if self._steps is not None:
                return
            if remaining:
                self._premature_wake()
        if not remaining and reclaim.prepare_kswapd_sleep(reclaim_order, highest_zoneidx):
            self.full_sleeps += 1
            yield from self._sleep(None)

    def run(self):
        """``kswapd``: sleep, read and clear the order asked for, ``balance_pgdat``;
        when reclaim fell back to order 0, try to sleep for the order it finished at
        while kcompactd is woken for the order asked::

            alloc_order = reclaim_order = READ_ONCE(pgdat->kswapd_order);
        kswapd_try_sleep:
            kswapd_try_to_sleep(pgdat, alloc_order, reclaim_order, highest_zoneidx);
            alloc_order = READ_ONCE(pgdat->kswapd_order);
            WRITE_ONCE(pgdat->kswapd_order, 0);
            ...
            reclaim_order = balance_pgdat(pgdat, alloc_order, highest_zoneidx);
            if (reclaim_order < alloc_order)
                goto kswapd_try_sleep;
        """
        reclaim = self.reclaim
        env = self.env
        self._highest_zoneidx = -1  # MAX_NR_ZONES - 1: the node's highest zone
        while True:
            self._alloc_order = self._reclaim_order = reclaim.kswapd_order
            self._highest_zoneidx = self._read_highest_zoneidx(self._highest_zoneidx)
            while True:
                yield from self.try_to_sleep(self._alloc_order, self._reclaim_order,
                                             self._highest_zoneidx)
                if self._steps is None:
                    self._begin_balance(env.now)
                reclaim_order = yield from self._balance()
                self._reclaim_order = reclaim_order
                self.stats.time_s += env.now - self._started
                self.running = False
                if reclaim_order >= self._alloc_order:
                    break

    def _begin_balance(self, now: float) -> None:
        """What follows kswapd_try_to_sleep in ``kswapd``: read and clear the order and
        the classzone asked for, and start ``balance_pgdat`` at ``now``."""
        reclaim = self.reclaim
        self._alloc_order = reclaim.kswapd_order
        self._highest_zoneidx = self._read_highest_zoneidx(self._highest_zoneidx)
        reclaim.kswapd_order = 0
        reclaim.kswapd_highest_zoneidx = -1
        self.stats.runs += 1
        self.running = True
        self._started = self._busy_until = now
        self._done = None
        self._steps = reclaim.balance_pgdat(self._alloc_order, self._highest_zoneidx)
        self._publish()

    def _read_highest_zoneidx(self, prev: int) -> int:
        """``kswapd_highest_zoneidx(pgdat, prev)``: the classzone asked, or ``prev``."""
        curr = self.reclaim.kswapd_highest_zoneidx
        return prev if curr < 0 else curr

    def _step(self) -> float:
        """Run balance_pgdat's next step at ``_busy_until``; it ends its cost later.
        Returns the cost (0 when balance_pgdat returned)."""
        steps = self._steps
        assert steps is not None
        try:
            cost = next(steps)
        except StopIteration as done:
            self._done = done.value
            self._publish()
            return 0.0
        self._busy_until += cost
        self._publish()
        return cost

    def _balance(self):
        """``balance_pgdat``, sleeping each step's cost; returns its order. Steps a
        direct compaction already ran (``run_concurrently``) are slept, not repeated.
        A step's sleep that ends before any other event is due is not queued: the
        clock moves to its end and the next step runs (``advance_to`` of sim/machine.py
        ``CountingEnvironment``; the same order of work, one event fewer to process)."""
        env = self.env
        advance_to = getattr(env, "advance_to", None)
        while True:
            if self._busy_until > env.now:
                # Steps run ahead by a direct compaction: sleep until the last one ends.
                target = self._busy_until
                yield env.timeout(target - env.now)
                if self._busy_until == target:
                    self._busy_until = env.now
                    self._publish()
                continue
            if self._done is None:
                self._busy_until = env.now
                cost = self._step()
                if self._done is None:
                    if advance_to is not None and advance_to(self._busy_until):
                        continue  # slept, with nothing else due meanwhile
                    # The step's cost, slept; steps run meanwhile extend the sleep.
                    yield env.timeout(cost)
                continue
            done = self._done
            self._steps = None
            self._done = None
            self._publish()
            return done

    def attach_gate(self, gate: OtherCpus) -> None:
        """The direct compactions' hook that calls ``run_concurrently``: from now on it
        is told when a call would find nothing to do (``_publish``)."""
        self.gate = gate
        self._publish()

    def _publish(self) -> None:
        """Tell the direct compactions' hook (``gate``) up to when ``run_concurrently``
        has nothing to do: while balance_pgdat runs, until its current step ends; once
        it has returned and until this process has taken its result, ever; otherwise
        (a wake may have come) never. Called wherever those three change."""
        gate = self.gate
        if gate is None:
            return
        if not self.enabled or (self._steps is not None and self._done is not None):
            gate.not_before = math.inf
        elif self._steps is not None:
            gate.not_before = self._busy_until
        else:
            gate.not_before = -math.inf

    def run_concurrently(self, until: float) -> None:
        """kswapd on another CPU while a direct compaction takes its time, up to
        simulated time ``until``: a kswapd woken and not yet resumed starts its
        ``balance_pgdat`` at once (the kernel wakes it before compacting), and every
        step that starts before ``until`` runs now. A step's work is done at its start
        and its cost slept after it, as in ``_balance``; work that starts at ``until``
        is not seen (nothing is done in no time). The rest of that balance_pgdat, and
        any sleep after it, is left to kswapd's own process."""
        if not self.enabled:
            return
        if self._steps is None:
            if not (self.sleeping and self._event.triggered):
                return
            # The wake came at the waking task's time: a slow path may have stalled
            # before it.
            start = max(self.env.now, self._woken_at)
            if until <= start:
                return
            # What the process does when it resumes from the wake.
            self.sleeping = False
            if self._napping:
                self._premature_wake()
            self._begin_balance(start)
        while self._done is None and self._busy_until < until:
            self._step()
            if self._done is None:
                self.concurrent_steps += 1

class Kcompactd:
    """kcompactd for one node (see the module docstring)."""

    def __init__(self, env: simpy.Environment, compactor: Compactor,
                 enabled: bool = True) -> None:
        self.env = env
        self.compactor = compactor
        self.enabled = enabled
        self.stats = DaemonStats()
        self.max_order = 0  # pgdat->kcompactd_max_order
        self.sleeping = False  # on kcompactd_wait
        self._event = env.event()

    def wakeup(self, order: int) -> None:
        """``wakeup_kcompactd``: record the order; wake a sleeping kcompactd only when
        the zone is suitable for it (``kcompactd_node_suitable``). An order left
        recorded is done at kcompactd's next timeout, when its wait condition
        (``kcompactd_work_requested``) is checked again::

            if (!order)
                return;
            if (pgdat->kcompactd_max_order < order)
                pgdat->kcompactd_max_order = order;
            ...
            if (!wq_has_sleeper(&pgdat->kcompactd_wait))
                return;
            if (!kcompactd_node_suitable(pgdat))
                return;
            wake_up_interruptible(&pgdat->kcompactd_wait);
        """
        if not self.enabled or not order:
            return
        if self.max_order < order:
            self.max_order = order
        if not self.sleeping:
            return
        if not self.compactor.kcompactd_node_suitable(self.max_order):
            return
        if not self._event.triggered:
            self._event.succeed()

    def run(self):
        """``kcompactd``: ``wait_event_freezable_timeout(kcompactd_wait,
        kcompactd_work_requested(pgdat), timeout)`` (no wait when an order is already
        recorded), then ``kcompactd_do_work`` when an order is recorded, else the
        proactive step. ``kcompactd_do_work`` clears the order it did, unless a higher
        one was asked meanwhile: ``if (pgdat->kcompactd_max_order <= cc.order)
        pgdat->kcompactd_max_order = 0;``"""
        env = self.env
        compactor = self.compactor
        timeout = KCOMPACTD_INTERVAL
        while True:
            if not self.max_order:
                woken = self._event
                self.sleeping = True
                if compactor.proactiveness:
                    yield woken | env.timeout(timeout)
                else:
                    yield woken  # timeout = MAX_SCHEDULE_TIMEOUT
                self.sleeping = False
                if woken.triggered:
                    self._event = env.event()
            before = compactor.stats.time_s
            order = self.max_order
            if order > 0:
                compactor.kcompactd_do_work(order)
                self.stats.runs += 1
                if self.max_order <= order:
                    self.max_order = 0
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


class Khugepaged:
    """khugepaged for one anonymous workload's mm (see the module docstring).

    ``alive()`` says whether the mm still exists (the workload has not ended).
    """

    def __init__(self, env: simpy.Environment, scan: KhugepagedScan, *,
                 pages_to_scan: int = 4096, scan_sleep: float = 10.0,
                 alloc_sleep: float = 60.0, alive: Callable[[], bool] = lambda: True
                 ) -> None:
        if pages_to_scan < 1:
            raise ValueError(f"expected pages_to_scan >= 1, got {pages_to_scan}")
        self.env = env
        self.scan = scan
        self.pages_to_scan = pages_to_scan
        self.scan_sleep = scan_sleep
        self.alloc_sleep = alloc_sleep
        self.alive = alive
        self.stats = DaemonStats()
        self.alloc_sleeps = 0

    def run(self):
        """``khugepaged``: ``khugepaged_do_scan``, then ``khugepaged_wait_work``
        (``scan_sleep_millisecs``), while the mm lives."""
        while self.alive():
            self.stats.runs += 1
            yield from self.do_scan()
            yield self.env.timeout(self.scan_sleep)

    def do_scan(self):
        """``khugepaged_do_scan``::

            while (true) {
                if (!khugepaged_scan.mm_slot)
                    pass_through_head++;
                if (khugepaged_has_work() && pass_through_head < 2)
                    progress += khugepaged_scan_mm_slot(pages - progress, &result, cc);
                else
                    progress = pages;
                if (progress >= pages)
                    break;
                if (result == SCAN_ALLOC_HUGE_PAGE_FAIL) {
                    if (!wait)
                        break;
                    wait = false;
                    khugepaged_alloc_sleep();
                }
            }
        """
        pages = self.pages_to_scan
        progress = pass_through_head = 0
        wait = True
        result = ScanResult.SCAN_SUCCEED
        scan = self.scan
        while True:
            if not scan.in_mm:
                pass_through_head += 1
            if pass_through_head < 2 and self.alive():
                done, result = scan.scan_mm_slot(pages - progress)
                progress += done
            else:
                progress = pages
            if progress >= pages:
                return
            if result == ScanResult.SCAN_ALLOC_HUGE_PAGE_FAIL:
                if not wait:
                    return
                wait = False
                self.alloc_sleeps += 1
                yield self.env.timeout(self.alloc_sleep)


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
