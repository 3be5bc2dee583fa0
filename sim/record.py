"""``fragsim record``: sample the live kernel over time into a run's result layout.

What a sample reads, each file once, one after another (not atomically: on a busy
machine two files can disagree by the pages that moved between the reads):

- ``/proc/buddyinfo``: ``nr_free`` and, computed from it as mm/vmstat.c computes them
  (sim/metrics.py), ``avail``, ``unusable_index``, ``fragmentation_index`` and
  ``fragmentation_score``;
- ``/proc/zoneinfo``: per zone ``pages free`` (NR_FREE_PAGES: ``free_pages``),
  ``boost`` (``watermark_boost``), the pagesets' ``count`` (``pcp_pages``) and
  ``present`` (the weights of the node's fragmentation score);
- ``/proc/pagetypeinfo`` (root only): ``Number of blocks type`` (``pageblocks``,
  ``highatomic_pageblocks``), ``Number of mixed blocks`` when page_owner is on
  (``mixed_pageblocks``, of the Movable type) and ``Page block order``;
- ``/proc/slabinfo`` (root only): ``active_objs`` (``slab_objects``), ``num_slabs``
  (``slab_slabs``), ``num_slabs x pagesperslab`` (``slab_pages``) and
  ``active_objs / num_objs`` (``slab_occupancy``), for the caches that held at least
  ``slab_min_pages`` pages at some sample (from then on at every sample);
- ``/proc/vmstat``: the event counters of ``VMSTAT_COUNTERS`` as ``vmstat`` (each one
  less its value at the first sample), ``allocstall`` (the sum of ``allocstall_*``),
  ``thp_fault_alloc`` and ``thp_fault_fallback`` (the THP series) and
  ``nr_active_file + nr_inactive_file`` (``page_cache_pages``, the file LRU);
- ``/proc/meminfo``: ``MemAvailable`` (``mem_available``, in pages).

The series are named as a simulated run names them (docs/results.md, "The names a
record and a run share"): the machine-wide series keep a run's keys (``avail`` key
``9`` is summed over every zone; the indices are computed from the summed free counts;
``pageblocks`` key ``Movable`` is summed over the zones) and each zone's are the same
metric with the key ``<Zone>/<key>``, or ``<Zone>`` where the machine-wide key is empty
(``avail`` key ``Normal/9``, ``free_pages`` key ``Normal``), as sim/metrics.py
``node_metrics`` names a simulated node's. A zone of a node other than 0 is named
``<Zone>:node<N>`` and the machine-wide series sum every node.

The recording: ``start/`` and ``final/`` are ``fragsim snapshot`` directories
(sim/livekernel.py) taken before the first sample and after the last;
``timeseries.csv`` (variant ``real``, seed 0) is written as the samples come, into the
partial run directory (sim/results.py ``RunDirectory``), so that a long recording
holds no series in memory; ``summary.json`` has a run's keys where the kernel has a
counterpart (``SUMMARY_COUNTERS``), the whole ``vmstat`` delta and ``"source":
"record"``; ``config.yaml`` the kernel release, the vm sysctls, the THP settings, the
block devices' read_ahead_kb and max_sectors_kb, and the command; the DAMON schemes that
run are in ``start/damon.json`` and ``final/damon.json`` (settings and counters), and
summary.json's ``damon`` says what each did during the recording (memory a ``pageout``
scheme reclaimed is in no pgsteal counter, and fragsim does not model it). Samples are
taken every ``every`` seconds of wall time from the first (a sample that overruns its
slot skips the slots it missed), and once more when the command exits or the duration
ends.

The command runs in its own process group (so that the terminal's Ctrl-C reaches
fragsim only); on Ctrl-C, SIGTERM or the time limit fragsim stops the group (SIGTERM,
then SIGKILL after ``STOP_GRACE_S``) and still writes what it recorded, marked
``complete: false`` when the recording was cut short.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from sim import __version__, metrics
from sim.errors import FragsimError
from sim.livekernel import (
    BLOCK_QUEUE_FILES,
    DAMON_JSON,
    DAMON_STATS,
    THP_FILES,
    VM_SYSCTLS,
    LiveKernel,
    block_queues,
    read_stripped,
    take_snapshot,
)
from sim.procfs import (
    Pagetypeinfo,
    ZoneFree,
    ZoneinfoZone,
    parse_buddyinfo,
    parse_pagetypeinfo,
    parse_slabinfo,
    parse_zoneinfo,
)
from sim.results import TIMESERIES_COLUMNS, RunDirectory, write_atomic, write_json, zone_key
from sim.stats import aggregate
from sim.units import human_size

VARIANT = "real"
SEED = 0
# The files a sample reads, in the order it reads them.
SAMPLED_FILES = ("buddyinfo", "zoneinfo", "pagetypeinfo", "slabinfo", "vmstat", "meminfo")
# The /proc/vmstat event counters written as ``vmstat`` series (less their first value);
# a counter the kernel lacks is left out. ``allocstall`` (their sum) is added.
VMSTAT_COUNTERS = (
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
    "thp_collapse_alloc", "thp_collapse_alloc_failed",
    "compact_stall", "compact_success", "compact_fail", "compact_migrate_scanned",
    "compact_free_scanned", "compact_isolated", "compact_daemon_wake",
    "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
    "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct",
    "pgskip_dma", "pgskip_dma32", "pgskip_normal", "pgskip_movable",
    "allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable",
    "allocstall_device", "slabs_scanned", "kswapd_inodesteal", "pginodesteal",
    "pgmigrate_success", "pgmigrate_fail", "pageoutrun", "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly", "drop_pagecache", "drop_slab",
    "nr_free_pages", "nr_file_pages",
)
# A run's summary sections and keys, and the vmstat delta each takes in a record's.
SUMMARY_COUNTERS = {
    "compaction": {"stalls": "compact_stall", "successes": "compact_success",
                   "failures": "compact_fail", "migrate_scanned": "compact_migrate_scanned",
                   "free_scanned": "compact_free_scanned", "isolated": "compact_isolated",
                   "migrated": "pgmigrate_success", "migrate_failed": "pgmigrate_fail",
                   "kcompactd_wakes": "compact_daemon_wake"},
    "engine": {"direct_reclaim": "allocstall", "direct_reclaimed": "pgsteal_direct",
               "kswapd_runs": "pageoutrun", "kswapd_reclaimed": "pgsteal_kswapd"},
    "shrinker": {"objects_scanned": "slabs_scanned"},
}
# A simulated run's series that a record does not write (or not always), and why.
NOT_RECORDED = {
    "mixed_pageblocks": "recorded only where pagetypeinfo prints its 'Number of mixed "
                        "blocks' (a kernel booted with page_owner=on)",
    "compact_migrated": "/proc/vmstat counts every migration (vmstat pgmigrate_success), "
                        "not compaction's alone",
    "extfrag_fallbacks": "no counter: the kernel has only the mm_page_alloc_extfrag "
                         "tracepoint",
    "defrag_pages_returned": "no kernel has slab defragmentation",
    "page_cache_folios": "no counter of page-cache folios by order",
}
SLAB_MIN_PAGES = 64  # the default: caches that held 256 KiB (of 4 KiB pages) at a sample
DEFAULT_LIMIT_S = 3600.0  # a command recorded without --duration is stopped after this
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this


# ------------------------------------------------------------------ from files to series


def zone_label(node: int, zone: str) -> str:
    """A zone's name in series keys: ``Normal`` on node 0, ``Normal:node1`` on node 1."""
    return zone if node == 0 else f"{zone}:node{node}"


def parse_vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat: one ``name value`` a line."""
    counters = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            counters[name] = int(value)
        except ValueError:
            continue
    return counters


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in kB (``HugePages_*`` are counts)."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            fields[name] = int(words[0])
    return fields


def free_area_series(zones: Sequence[ZoneFree], pageblock_order: int,
                     present: dict[tuple[int, str], int] | None = None
                     ) -> dict[tuple[str, str], float]:
    """``nr_free``, ``avail``, ``unusable_index`` (thousandths, every order),
    ``fragmentation_index`` (thousandths, at ``pageblock_order``) and
    ``fragmentation_score`` (percent) of every zone of a buddyinfo and of the machine.

    The machine's free counts are the zones' summed by order, and its indices are
    computed from them; its fragmentation score is the kernel's node score
    (``fragmentation_score_node``: each zone's weighted by its present pages, from
    ``present``), or, without zoneinfo, the score of the summed counts."""
    values: dict[tuple[str, str], float] = {}
    orders = len(zones[0].nr_free)
    total = [0] * orders

    def put(nr_free: Sequence[int], label: str | None) -> None:
        def key(k: str) -> str:
            return k if label is None else zone_key(label, k)

        for order in range(orders):
            values[("nr_free", key(str(order)))] = nr_free[order]
            values[("avail", key(str(order)))] = metrics.avail(nr_free, order)
            values[("unusable_index", key(str(order)))] = metrics.unusable_index(nr_free, order)
        if pageblock_order < orders:
            values[("fragmentation_index", key(str(pageblock_order)))] = (
                metrics.fragmentation_index(nr_free, pageblock_order))
            values[("fragmentation_score", key(""))] = metrics.extfrag_for_order(
                nr_free, pageblock_order)

    for zone in zones:
        put(zone.nr_free, zone_label(zone.node, zone.zone))
        total = [a + b for a, b in zip(total, zone.nr_free, strict=True)]
    put(total, None)
    if present is not None and pageblock_order < orders:
        weighted = [(present.get((z.node, z.zone), 0), z.nr_free) for z in zones]
        if sum(p for p, _ in weighted):
            values[("fragmentation_score", "")] = metrics.fragmentation_score_node(
                weighted, pageblock_order)
    return values


def zoneinfo_series(zones: Sequence[ZoneinfoZone], populated: set[tuple[int, str]]
                    ) -> dict[tuple[str, str], float]:
    """``free_pages`` (NR_FREE_PAGES), ``pcp_pages`` (the pagesets' counts) and
    ``watermark_boost`` of the zones buddyinfo prints, and of the machine (summed); and
    each CPU's pageset count, ``pcp_pages`` key ``ZONE/cpuN`` (and ``cpuN`` summed)."""
    values: dict[tuple[str, str], float] = {}
    sums = {"free_pages": 0, "pcp_pages": 0, "watermark_boost": 0}
    for zone in zones:
        if (zone.node, zone.zone) not in populated:
            continue
        label = zone_label(zone.node, zone.zone)
        own = {"free_pages": zone.pages_free,
               "pcp_pages": sum(p.get("count", 0) for p in zone.pcp),
               "watermark_boost": zone.boost}
        for metric, value in own.items():
            values[(metric, zone_key(label, ""))] = value
            sums[metric] += value
        for cpu, pageset in enumerate(zone.pcp):
            count = pageset.get("count", 0)
            values[("pcp_pages", zone_key(label, f"cpu{cpu}"))] = count
            values[("pcp_pages", f"cpu{cpu}")] = values.get(("pcp_pages", f"cpu{cpu}"), 0) + count
    for metric, value in sums.items():
        values[(metric, "")] = value
    return values


def pageblock_series(info: Pagetypeinfo) -> dict[tuple[str, str], float]:
    """``pageblocks`` by migratetype (pagetypeinfo's names) per zone and summed,
    ``highatomic_pageblocks``, and, where the kernel prints its ``Number of mixed
    blocks`` (booted with page_owner=on), ``mixed_pageblocks``: the Movable pageblocks
    holding a page allocated for another migratetype."""
    values: dict[tuple[str, str], float] = {}
    names = info.migratetypes
    for metric, rows in (("pageblocks", info.blocks), ("mixed_pageblocks", info.mixed)):
        if not rows:
            continue
        total = [0] * len(names)
        for (node, zone), counts in rows.items():
            label = zone_label(node, zone)
            total = [a + b for a, b in zip(total, counts, strict=True)]
            for name, count in zip(names, counts, strict=True):
                if metric == "pageblocks":
                    values[(metric, zone_key(label, name))] = count
                    if name == "HighAtomic":
                        values[("highatomic_pageblocks", label)] = count
                elif name == "Movable":
                    values[(metric, label)] = count
        for name, count in zip(names, total, strict=True):
            if metric == "pageblocks":
                values[(metric, name)] = count
                if name == "HighAtomic":
                    values[("highatomic_pageblocks", "")] = count
            elif name == "Movable":
                values[(metric, "")] = count
    return values


def slab_series(entries, caches: Sequence[str] | set[str]) -> dict[tuple[str, str], float]:
    """``slab_objects``, ``slab_slabs``, ``slab_pages`` and ``slab_occupancy`` of the
    named caches (SLUB's slabinfo: active_objs counts every object of a per-CPU slab)."""
    values: dict[tuple[str, str], float] = {}
    for e in entries:
        if e.name in caches:
            values[("slab_objects", e.name)] = e.active_objs
            values[("slab_slabs", e.name)] = e.num_slabs
            values[("slab_pages", e.name)] = e.num_slabs * e.pagesperslab
            values[("slab_occupancy", e.name)] = (e.active_objs / e.num_objs if e.num_objs
                                                  else 1.0)
    return values


def vmstat_series(now: dict[str, int], first: dict[str, int]) -> dict[tuple[str, str], float]:
    """``vmstat`` series: each counter of VMSTAT_COUNTERS less its first value, and
    ``allocstall``, the sum of the ``allocstall_*`` counters."""
    values: dict[tuple[str, str], float] = {}
    for name in VMSTAT_COUNTERS:
        if name in now and name in first:
            values[("vmstat", name)] = now[name] - first[name]
    stalls = [v for (_, k), v in values.items() if k.startswith("allocstall_")]
    if stalls:
        values[("vmstat", "allocstall")] = sum(stalls)
    return values


def thp_counts(vmstat: dict[str, int]) -> tuple[int, int]:
    """(THP fault successes, attempts): thp_fault_alloc, and it plus thp_fault_fallback
    (which counts thp_fault_fallback_charge too)."""
    alloc = vmstat.get("thp_fault_alloc", 0)
    return alloc, alloc + vmstat.get("thp_fault_fallback", 0)


def thp_series(now: dict[str, int], previous: dict[str, int], first: dict[str, int]
               ) -> dict[tuple[str, str], float]:
    """The THP series of a run's probe, from every THP fault of the machine:
    ``thp_attempts`` since the first sample; ``thp_success_cumulative``, their share that
    succeeded (absent before the first attempt, as a run's); ``thp_success_rate``, the
    share that succeeded since the previous sample (absent when there was none)."""
    if "thp_fault_alloc" not in now:
        return {}
    ok, tried = thp_counts(now)
    ok0, tried0 = thp_counts(first)
    ok1, tried1 = thp_counts(previous)
    values: dict[tuple[str, str], float] = {("thp_attempts", ""): tried - tried0}
    if tried > tried0:
        values[("thp_success_cumulative", "")] = (ok - ok0) / (tried - tried0)
    if tried > tried1:
        values[("thp_success_rate", "")] = (ok - ok1) / (tried - tried1)
    return values


@dataclass
class Sample:
    """What one sample read: the files' texts (None: unreadable now) and when."""

    time: float
    texts: dict[str, str | None]


class Sampler:
    """Reads the sampled files (each once) and turns them into series.

    The files unreadable at the first sample (root only, or absent) are skipped for the
    whole recording; ``skipped`` says which and why. The state kept between samples:
    the first and previous vmstat counters, and the slab caches being recorded.
    """

    def __init__(self, kernel: LiveKernel, slab_min_pages: int = SLAB_MIN_PAGES,
                 page_size: int | None = None) -> None:
        self.kernel = kernel
        self.slab_min_pages = slab_min_pages
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self.files = list(SAMPLED_FILES)
        self.skipped: dict[str, str] = {}
        self.first_vmstat: dict[str, int] | None = None
        self.last_vmstat: dict[str, int] = {}
        self.caches: set[str] = set()
        self.last_buddyinfo: list[ZoneFree] | None = None
        self.last_slabinfo: list | None = None
        self.pageblock_order = self._hpage_order()
        self._first_read = True
        self.origin: float | None = None  # time.monotonic() of the first sample: t = 0

    def _hpage_order(self) -> int:
        """The pageblock order before pagetypeinfo says it: HPAGE_PMD_ORDER, from THP's
        hpage_pmd_size (9 on x86-64 with 4 KiB pages, also without THP)."""
        try:
            size = int((self.kernel.sys_mm / "transparent_hugepage" / "hpage_pmd_size")
                       .read_text())
            return max(0, (size // self.page_size).bit_length() - 1)
        except (OSError, ValueError):
            return 9

    def read(self) -> Sample:
        started = time.monotonic()
        if self.origin is None:
            self.origin = started
        texts: dict[str, str | None] = {}
        first, self._first_read = self._first_read, False
        for name in list(self.files):
            try:
                texts[name] = (self.kernel.proc / name).read_text()
            except PermissionError:
                texts[name] = None
                if first:
                    self.skipped[name] = "permission denied: root only"
            except FileNotFoundError:
                texts[name] = None
                if first:
                    self.skipped[name] = "not present on this kernel"
            except OSError as err:
                texts[name] = None
                if first:
                    self.skipped[name] = err.strerror or str(err)
        if first:
            self.files = [n for n in self.files if n not in self.skipped]
        return Sample(started - self.origin, texts)

    def series(self, sample: Sample) -> dict[tuple[str, str], float]:
        """The sample's series, named as a run names them."""
        texts = sample.texts
        values: dict[tuple[str, str], float] = {}
        blocks = None
        if texts.get("pagetypeinfo"):
            info = parse_pagetypeinfo(texts["pagetypeinfo"], "/proc/pagetypeinfo")
            self.pageblock_order = info.pageblock_order
            blocks = info
        zoneinfo = (parse_zoneinfo(texts["zoneinfo"], "/proc/zoneinfo")
                    if texts.get("zoneinfo") else None)
        if texts.get("buddyinfo"):
            buddy = parse_buddyinfo(texts["buddyinfo"], "/proc/buddyinfo")
            self.last_buddyinfo = buddy
            present = ({(z.node, z.zone): z.present for z in zoneinfo}
                       if zoneinfo is not None else None)
            values.update(free_area_series(buddy, self.pageblock_order, present))
            if zoneinfo is not None:
                values.update(zoneinfo_series(zoneinfo, {(z.node, z.zone) for z in buddy}))
        if blocks is not None:
            values.update(pageblock_series(blocks))
        if texts.get("slabinfo"):
            entries = parse_slabinfo(texts["slabinfo"], "/proc/slabinfo")
            self.last_slabinfo = entries
            self.caches |= {e.name for e in entries
                            if e.num_slabs * e.pagesperslab >= self.slab_min_pages}
            values.update(slab_series(entries, self.caches))
        if texts.get("vmstat"):
            vmstat = parse_vmstat(texts["vmstat"])
            if self.first_vmstat is None:
                self.first_vmstat = self.last_vmstat = vmstat
            values.update(vmstat_series(vmstat, self.first_vmstat))
            values.update(thp_series(vmstat, self.last_vmstat, self.first_vmstat))
            if "nr_active_file" in vmstat and "nr_inactive_file" in vmstat:
                values[("page_cache_pages", "")] = (vmstat["nr_active_file"]
                                                    + vmstat["nr_inactive_file"])
            self.last_vmstat = vmstat
        if texts.get("meminfo"):
            meminfo = parse_meminfo(texts["meminfo"])
            if "MemAvailable" in meminfo:
                values[("mem_available", "")] = meminfo["MemAvailable"] * 1024 // self.page_size
        return values

    def skipped_series(self) -> list[str]:
        """The series the skipped files would have given."""
        gives = {"pagetypeinfo": ["pageblocks", "highatomic_pageblocks"],
                 "slabinfo": ["slab_*"], "buddyinfo": ["nr_free", "avail", "the indices"],
                 "zoneinfo": ["free_pages", "pcp_pages", "watermark_boost"],
                 "vmstat": ["vmstat", "thp_*", "page_cache_pages"],
                 "meminfo": ["mem_available"]}
        return [s for name in self.skipped for s in gives.get(name, [])]


# ------------------------------------------------------------------ the recording


@dataclass
class RecordResult:
    """How a recording went (the CLI's exit status and lines come from it)."""

    out: Path
    samples: int = 0
    duration_s: float = 0.0
    complete: bool = True
    stopped_by: str = "duration"  # "command", "duration", "limit" or "signal"
    command_status: int | None = None  # the command's exit status (128 + N: signal N)
    signum: int | None = None  # the signal that stopped the recording
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_series: list[str] = field(default_factory=list)
    sample_cost_mean_s: float = math.nan
    sample_cost_max_s: float = math.nan
    summary: dict[str, Any] = field(default_factory=dict)


class _Command:
    """The recorded command, in a process group of its own."""

    def __init__(self, argv: Sequence[str]) -> None:
        stdin = subprocess.DEVNULL if sys.stdin is not None and _isatty(sys.stdin) else None
        try:
            # process_group=0: its own group, in fragsim's session (it keeps the
            # terminal for output; the terminal's Ctrl-C goes to fragsim's group only).
            self.proc = subprocess.Popen(list(argv), process_group=0, stdin=stdin)
        except OSError as err:
            raise FragsimError(f"{argv[0]}: cannot run: {err.strerror or err}") from err
        self.stopped = False

    def wait(self, timeout: float) -> int | None:
        """Its exit status when it exits within ``timeout`` s, else None."""
        try:
            return _exit_status(self.proc.wait(timeout=max(0.0, timeout)))
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        """SIGTERM its process group, SIGKILL after STOP_GRACE_S; its exit status."""
        if self.proc.poll() is None:
            self.stopped = True
            for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return _exit_status(self.proc.wait())


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _exit_status(code: int) -> int:
    """A shell's exit status: 128 + N for a process killed by signal N."""
    return 128 - code if code < 0 else code


def _check_command(argv: Sequence[str]) -> None:
    name = argv[0]
    if "/" in name:
        if not os.path.exists(name):
            raise FragsimError(f"{name}: expected an executable command, got no such file")
        if not os.access(name, os.X_OK) or os.path.isdir(name):
            raise FragsimError(f"{name}: expected an executable command, got a file that "
                               "is not executable")
    elif shutil.which(name) is None:
        raise FragsimError(f"{name}: expected a command on PATH, got none by that name")


def _setting(text: str | None) -> int | str | None:
    """A sysctl's or THP file's value: an int, the bracketed choice of ``always
    [madvise] never``, or the text."""
    if text is None:
        return None
    if "[" in text and "]" in text:
        return text[text.index("[") + 1:text.index("]")]
    try:
        return int(text)
    except ValueError:
        return text


def block_devices(kernel: LiveKernel) -> dict[str, dict[str, int]]:
    """Each block device's ``read_ahead_kb`` (``bdi->ra_pages``) and ``max_sectors_kb``
    (``bdi->io_pages``): they set how large a file's page-cache folios grow
    (sim/readahead.py), so a twin's ``page_cache.read_ahead_kb`` must be its disk's."""
    out: dict[str, dict[str, int]] = {}
    for queue in block_queues(kernel):
        values = {name: _setting(read_stripped(queue / name)) for name in BLOCK_QUEUE_FILES}
        if all(isinstance(v, int) for v in values.values()):
            out[queue.parent.name] = values  # type: ignore[assignment]
    return out


def kernel_config(kernel: LiveKernel, page_size: int) -> dict[str, Any]:
    """The kernel release, machine, memory, vm sysctls, THP settings and the block
    devices' readahead limits."""
    meminfo = parse_meminfo(read_stripped(kernel.proc / "meminfo") or "")
    zones = {}
    zoneinfo_text = read_stripped(kernel.proc / "zoneinfo")
    if zoneinfo_text:
        try:
            for z in parse_zoneinfo(zoneinfo_text, "/proc/zoneinfo"):
                if z.present:
                    zones[zone_label(z.node, z.zone)] = {"present_pages": z.present,
                                                         "managed_pages": z.managed}
        except FragsimError:
            zones = {}
    return {
        "release": (read_stripped(kernel.proc / "sys" / "kernel" / "osrelease")
                    or platform.release()),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "page_size": page_size,
        "mem_total_bytes": meminfo.get("MemTotal", 0) * 1024 or None,
        "zones": zones,
        "sysctls": {f"vm.{name}": _setting(read_stripped(kernel.proc / "sys" / "vm" / name))
                    for name in VM_SYSCTLS},
        "thp": {name: _setting(read_stripped(kernel.sys_mm / "transparent_hugepage" / name))
                for name in THP_FILES},
        "block_devices": block_devices(kernel),
    }


def damon_activity(run_dir: Path) -> list[dict[str, Any]]:
    """What each DAMON scheme did during a recording, from its ``start/`` and ``final/``
    snapshots' ``damon.json``: the action and every counter's difference
    (``sz_applied``: bytes the action was applied to). Schemes in only one of them are
    left out."""
    def schemes(path: Path) -> dict[tuple[int, int, int], dict]:
        try:
            listed = json.loads((path / DAMON_JSON).read_text())
        except (OSError, ValueError):
            return {}
        return {(d["kdamond"], d["context"], d["scheme"]): d for d in listed}
    before, after = schemes(run_dir / "start"), schemes(run_dir / "final")
    out = []
    for key in sorted(before.keys() & after.keys()):
        b, a = before[key]["stats"], after[key]["stats"]
        out.append({"kdamond": key[0], "context": key[1], "scheme": key[2],
                    "action": after[key]["action"],
                    **{name: a[name] - b[name] for name in DAMON_STATS
                       if isinstance(a.get(name), int) and isinstance(b.get(name), int)}})
    return out


class _SeriesWriter:
    """timeseries.csv, a sample's rows at a time; keeps what the summary needs."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.csv = csv.writer(self.file, lineterminator="\n")
        self.csv.writerow(TIMESERIES_COLUMNS)
        self.avail: list[tuple[float, float]] = []  # avail[pageblock order], machine-wide

    def write(self, t: float, values: dict[tuple[str, str], float], order: int) -> None:
        time_text = f"{t:.9g}"
        self.csv.writerows((time_text, VARIANT, SEED, metric, key, f"{value:.10g}")
                           for (metric, key), value in values.items() if value == value)
        self.file.flush()
        if ("avail", str(order)) in values:
            self.avail.append((t, values[("avail", str(order))]))

    def close(self) -> None:
        self.file.close()


def _time_average(points: list[tuple[float, float]]) -> float:
    if not points:
        return math.nan
    if len(points) == 1 or points[-1][0] <= points[0][0]:
        return points[-1][1]
    area = sum((t1 - t0) * (v0 + v1) / 2
               for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False))
    return area / (points[-1][0] - points[0][0])


def record_summary(sampler: Sampler, writer: _SeriesWriter, result: RecordResult,
                   command: Sequence[str] | None, wall_s: float) -> dict[str, Any]:
    """A run's summary keys where the kernel has them (SUMMARY_COUNTERS), from the
    first and last samples; ``vmstat`` holds every counter's delta."""
    first = sampler.first_vmstat or {}
    last = sampler.last_vmstat or {}
    delta = {name: last[name] - first[name] for name in last
             if name in first and not name.startswith("nr_")}
    delta["allocstall"] = sum(v for k, v in delta.items() if k.startswith("allocstall_"))
    ok, tried = thp_counts(last)
    ok0, tried0 = thp_counts(first)
    order = sampler.pageblock_order
    summary: dict[str, Any] = {
        "variant": VARIANT,
        "seed": SEED,
        "source": "record",
        "wall_s": wall_s,
        "duration_s": result.duration_s,
        "samples": result.samples,
        "sample_cost_s": {"mean": result.sample_cost_mean_s, "max": result.sample_cost_max_s},
        "command": list(command) if command else None,
        "command_status": result.command_status,
        "stopped_by": result.stopped_by,
        "measure_from_s": 0.0,
    }
    if sampler.last_buddyinfo:
        nr_free = [sum(col) for col in zip(*(z.nr_free for z in sampler.last_buddyinfo),
                                           strict=True)]
        summary["avail"] = {str(o): metrics.avail(nr_free, o) for o in range(len(nr_free))}
        summary["avail_by_zone"] = {
            zone_label(z.node, z.zone): {str(o): metrics.avail(z.nr_free, o)
                                         for o in range(len(z.nr_free))}
            for z in sampler.last_buddyinfo}
        summary[f"avail{order}_time_avg"] = _time_average(writer.avail)
    if "thp_fault_alloc" in last:
        summary["thp_success_rate"] = (ok - ok0) / (tried - tried0) if tried > tried0 else math.nan
        summary["thp_attempts"] = tried - tried0
        summary["thp_successes"] = ok - ok0
    for section, keys in SUMMARY_COUNTERS.items():
        found = {key: delta[name] for key, name in keys.items() if name in delta}
        if found:
            summary[section] = found
    if sampler.last_slabinfo is not None:
        summary["caches"] = {e.name: {"active_objs": e.active_objs, "num_slabs": e.num_slabs,
                                      "pages": e.num_slabs * e.pagesperslab}
                             for e in sampler.last_slabinfo if e.name in sampler.caches}
    summary["vmstat"] = delta
    if result.skipped:
        summary["skipped"] = dict(result.skipped)
    return summary


Progress = Callable[[float, int, dict[tuple[str, str], float], float], None]


class Driver(Protocol):
    """What a recording runs beside its samples: the recorded command (``_Command``), or
    the workloads of ``fragsim run --real`` (sim/realrun.py). ``wait`` returns an exit
    status when it ended by itself within ``timeout`` s (None: still running), ``stop``
    ends it and returns its status; ``stopped_by``, when set, names why it ended."""

    def wait(self, timeout: float) -> int | None: ...

    def stop(self) -> int: ...


@dataclass
class _Recording:
    """One recording's settings and state, from the first sample to the files.

    ``start_driver`` (default: start ``command``) is called right after the first
    sample; ``extra(t, values)`` may change each sample's series before they are
    written; ``at_limit`` runs after the last sample when the time limit is reached,
    before the driver is stopped."""

    sampler: Sampler
    writer: _SeriesWriter
    result: RecordResult
    command: Sequence[str] | None
    every: float
    duration: float | None
    limit: float
    progress: Progress | None
    costs: list[float] = field(default_factory=list)
    start_driver: Callable[[], Driver] | None = None
    extra: Callable[[float, dict[tuple[str, str], float]], None] | None = None
    at_limit: Callable[[], None] | None = None

    def take(self) -> float:
        """One sample: read, turn into series, write its rows, report it; its time. Its
        cost is all of that, the reads and the parsing."""
        started = time.monotonic()
        sample = self.sampler.read()
        values = self.sampler.series(sample)
        if self.extra is not None:
            self.extra(sample.time, values)
        self.writer.write(sample.time, values, self.sampler.pageblock_order)
        cost = time.monotonic() - started
        self.costs.append(cost)
        self.result.samples += 1
        self.result.duration_s = sample.time
        if self.progress is not None:
            self.progress(sample.time, self.result.samples, values, cost)
        return sample.time

    def run(self, notify: Callable[[str], None] | None) -> None:
        """Sample at t = 0, start the command, then sample at every slot of ``every``
        until the command exits (one more sample then) or the limit; Ctrl-C or SIGTERM
        stop it. The command's process group is stopped if it still runs."""
        result = self.result
        cmd: Driver | None = None
        try:
            self.take()
            if self.sampler.skipped and notify is not None:
                what = ", ".join(f"{n} ({why})" for n, why in self.sampler.skipped.items())
                notify(f"skipped {what}: no {', '.join(self.sampler.skipped_series())} series")
            if self.start_driver is not None:
                cmd = self.start_driver()
            elif self.command:
                cmd = _Command(self.command)
            t0 = self.sampler.origin
            slot = 0
            while True:
                slot += 1
                while slot * self.every <= time.monotonic() - t0:
                    slot += 1  # a sample overran its slot: skip the missed ones
                next_t = min(slot * self.every, self.limit)
                if cmd is not None:
                    status = cmd.wait(next_t - (time.monotonic() - t0))
                    if status is not None:
                        result.command_status = status
                        result.stopped_by = getattr(cmd, "stopped_by", None) or "command"
                        self.take()
                        return
                else:
                    time.sleep(max(0.0, next_t - (time.monotonic() - t0)))
                self.take()
                if next_t >= self.limit:
                    result.stopped_by = "duration" if self.duration is not None else "limit"
                    if self.at_limit is not None:
                        self.at_limit()
                    return
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM raised by sim.cli
            result.signum = getattr(stop, "signum", signal.SIGINT)
            result.stopped_by = "signal"
        finally:
            if cmd is not None and result.command_status is None:
                result.command_status = cmd.stop()

    def write(self, path: Path, kernel: LiveKernel, slab_min_pages: int, wall_s: float
              ) -> None:
        """config.yaml and summary.json (the series are written already)."""
        result, sampler = self.result, self.sampler
        result.complete = result.stopped_by in ("command", "duration")
        result.skipped = dict(sampler.skipped)
        result.skipped_series = sampler.skipped_series()
        if self.costs:
            result.sample_cost_mean_s = sum(self.costs) / len(self.costs)
            result.sample_cost_max_s = max(self.costs)
        summary = record_summary(sampler, self.writer, result, self.command, wall_s)
        damon = damon_activity(path)
        if damon:
            summary["damon"] = damon
        summary["complete"] = result.complete
        result.summary = summary
        write_atomic(path / "config.yaml", yaml.safe_dump({
            "fragsim_version": __version__,
            "kind": "record",
            "name": result.out.name,
            "command": list(self.command) if self.command else None,
            "every": self.every,
            "duration": self.duration,
            "limit": self.limit,
            "slab_min_pages": slab_min_pages,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "root": os.geteuid() == 0,
            "kernel": kernel_config(kernel, sampler.page_size),
        }, sort_keys=False))
        write_json(path / "summary.json", {
            "fragsim_version": __version__,
            "name": result.out.name,
            "kind": "record",
            "source": "record",
            "complete": result.complete,
            "variants": {VARIANT: {"runs": [summary], **aggregate([summary])}},
        })


def record(out: str | Path, command: Sequence[str] | None = None, every: float = 1.0,
           duration: float | None = None, kernel: LiveKernel | None = None,
           slab_min_pages: int = SLAB_MIN_PAGES, progress: Progress | None = None,
           notify: Callable[[str], None] | None = None) -> RecordResult:
    """Sample the live kernel every ``every`` s while ``command`` runs (until it exits,
    at most ``duration``, by default DEFAULT_LIMIT_S) or for ``duration``; write the
    result directory ``out`` (see the module docstring). ``progress(t, samples,
    values, cost_s)`` hears of every sample; ``notify`` gets the one line that says what
    was skipped. Ctrl-C (or SIGTERM, as sim.cli raises it) stops the recording: the
    result is still written, ``complete: false``, and ``signum`` says which signal."""
    if not every > 0 or not math.isfinite(every):
        raise FragsimError(f"--every: expected a positive duration, got {every:g} s")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise FragsimError(f"--duration: expected a positive duration, got {duration:g} s")
    if not command and duration is None:
        raise FragsimError("fragsim record: expected --duration T or a command after --, "
                           "got neither (the recording must end)")
    if command:
        _check_command(command)
    if slab_min_pages < 0:
        raise FragsimError(f"--slab-min-pages: expected a number of at least 0, got "
                           f"{slab_min_pages}")
    kernel = kernel or LiveKernel()
    result = RecordResult(Path(out))
    with RunDirectory(out) as run_dir:
        take_snapshot(run_dir.path / "start", kernel)
        started = time.monotonic()
        writer = _SeriesWriter(run_dir.path / "timeseries.csv")
        try:
            recording = _Recording(Sampler(kernel, slab_min_pages), writer, result, command,
                                   every, duration,
                                   duration if duration is not None else DEFAULT_LIMIT_S,
                                   progress)
            recording.run(notify)
        finally:
            writer.close()
        take_snapshot(run_dir.path / "final", kernel)
        recording.write(run_dir.path, kernel, slab_min_pages, time.monotonic() - started)
    if notify is not None:
        for line in damon_notes(result.summary or {}):
            notify(line)
    return result


def damon_notes(summary: dict[str, Any]) -> list[str]:
    """One line for each DAMON scheme that reclaimed memory during a recording."""
    return [f"DAMON scheme {d['kdamond']}/{d['context']}/{d['scheme']} paged out "
            f"{human_size(d['sz_applied'])} during the recording, outside kswapd and direct "
            "reclaim and in no pgsteal counter; fragsim does not model it (summary.json: "
            "damon)"
            for d in summary.get("damon", [])
            if d.get("action") == "pageout" and d.get("sz_applied", 0) > 0]


__all__ = ["record", "RecordResult", "Sampler", "VMSTAT_COUNTERS", "NOT_RECORDED"]
