"""``fragsim run CONFIG --real --workdir DIR``: a config's workloads on the live kernel,
recorded as ``fragsim record`` records (sim/record.py), into a run's result layout.

The workloads that have a real counterpart (sim/real.py: ``anon``, ``page_cache``,
``fs_churn``, ``thp_probe``, ``fragment``, ``compact_memory``, and those inside
``phases`` steps) each run in a process of their own, paced by wall time from t0, the
first sample; the recorder samples the kernel every ``sample_every`` for ``duration``
meanwhile. Everything is checked before anything starts, and a config that cannot run
as it says is refused with one line naming the key (FragsimError, exit status 2):

- a kind without a real counterpart (``slab_churn``, ``kernel_alloc``, ``trace``, a
  ``module:Class`` of one's own), and parameters without one (``anon.pinned_share``,
  ``fragment.unmovable_share`` and ``slab_share``, ``page_cache.large_folios: false``,
  ``page_cache.fs: tmpfs``, ``fs_churn.lifetime``, ``cpu: random``, a THP probe of
  another order);
- the what-ifs no kernel has (``defrag.enabled``, ``buddy.free_list_order`` other than
  ``lifo``, ``buddy.pcp`` or ``buddy.grouping_by_mobility`` off,
  ``compaction.slab_movable``);
- a THP mode this machine's THP settings cannot give (``thp_advice``);
- a file system other than the one of DIR (``fs``), ``compact_memory`` without root,
  more open files than RLIMIT_NOFILE allows, ``reread`` or ``limit`` without
  cachestat(2);
- more memory than MemAvailable leaves (``check_memory``), more data than DIR's file
  system has room for (``check_disk``).

Settings of the model that are the machine's own (``machine``, ``buddy``'s sysctls,
``compaction``, ``reclaim``, ``slab``, ``caches``) are the live kernel's in a real run;
``real.yaml`` records those (the kernel's release, vm sysctls and THP settings). Where
a workload's parameter names a machine setting fragsim does not change (``anon``'s
``khugepaged``, ``page_cache``'s ``read_ahead_kb``) and the machine's differs, a warning
says so. ``cpu: N`` pins the process (sched_setaffinity); ``any`` and the default
``round_robin`` (which no process does) leave it where the scheduler puts it.

Safety. Files go into a fresh directory made inside DIR (``fragsim-real-NAME-XXXX``),
and only that directory is ever deleted. The run lasts ``duration`` from t0 (the
counterparts stop by themselves ten seconds after it, should this process hang), after
a setup (writing page_cache's files) of at most SETUP_LIMIT_S. A watchdog reads
MemAvailable every GUARD_EVERY_S and stops the run if it falls below half the margin.
On the normal end, on a workload's failure, on Ctrl-C and on SIGTERM the counterparts
are asked to stop, then SIGTERMed, then SIGKILLed (STOP_GRACE_S each), the directory is
deleted whole, and what was recorded is written, ``complete: false`` unless the run
reached its duration; a counterpart also dies with this process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim import __version__
from sim.config import ExperimentConfig
from sim.errors import FragsimError
from sim.gfp import __GFP_DIRECT_RECLAIM, __GFP_KSWAPD_RECLAIM, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT
from sim.huge_memory import thp_vma_allowable, vma_thp_gfp_mask
from sim.livekernel import LiveKernel, take_snapshot
from sim.real import (
    COUNTERPARTS,
    PAGE_SIZE,
    STATS_PER_WORKER,
    WorkerSpec,
    cachestat_works,
    size_text,
    worker_main,
)
from sim.record import (
    SLAB_MIN_PAGES,
    VARIANT,
    RecordResult,
    Sampler,
    _Recording,
    _SeriesWriter,
    damon_activity,
    damon_notes,
    kernel_config,
    parse_meminfo,
    record_summary,
)
from sim.results import RunDirectory, write_atomic, write_json
from sim.stats import aggregate
from sim.units import format_duration

MARGIN_BYTES = 1 << 30  # memory left free: at least 1 GiB ...
MARGIN_SHARE = 0.10  # ... or 10 % of MemTotal, whichever is more
DISK_MARGIN_SHARE = 0.05  # room left on DIR's file system: 5 % of its size
WORKER_BYTES = 64 << 20  # a counterpart's own process (Python and numpy)
FILE_SLAB_BYTES = 1024  # a file's dentry and inode
SETUP_LIMIT_S = 600.0
STOP_GRACE_S = 5.0
GUARD_EVERY_S = 0.1
MEMORY_FS = {"tmpfs", "ramfs"}
INODE_CACHES = {"ext4": "ext4_inode_cache", "xfs": "xfs_inode", "tmpfs": "shmem_inode_cache"}
NO_COUNTERPART = {
    "slab_churn": "objects of a chosen slab cache cannot be allocated from user space",
    "kernel_alloc": "kernel pages of a chosen order and gfp cannot be allocated from user "
                    "space",
    "trace": "a kmem trace's allocations are the kernel's own, not a process's",
}


class WorkloadFailed(FragsimError):
    """A workload failed while setting up: nothing was recorded (exit status 1)."""

    exit_code = 1


# ------------------------------------------------------------------ the live machine


@dataclass
class LiveMachine:
    """What the checks need to know of this machine, read once before anything runs."""

    mem_total: int  # bytes
    mem_available: int  # bytes
    hpage_size: int = 2 << 20
    thp_enabled: str = "never"
    thp_defrag: str = "madvise"
    khugepaged: dict[str, int] = field(default_factory=dict)
    cpus: set[int] = field(default_factory=set)
    root: bool = False
    nofile: int = 1024  # RLIMIT_NOFILE's hard limit
    cachestat: bool = True

    @property
    def margin(self) -> int:
        return max(MARGIN_BYTES, int(self.mem_total * MARGIN_SHARE))

    @property
    def budget(self) -> int:
        """The memory a real run may take: MemAvailable less the margin."""
        return max(0, self.mem_available - self.margin)


def _bracketed(text: str) -> str:
    return text[text.index("[") + 1:text.index("]")] if "[" in text else text.strip()


def read_live_machine(kernel: LiveKernel | None = None) -> LiveMachine:
    kernel = kernel or LiveKernel()
    meminfo = parse_meminfo((kernel.proc / "meminfo").read_text())
    thp = kernel.sys_mm / "transparent_hugepage"

    def read(path: Path, default: str) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return default

    khugepaged = {}
    for name in ("pages_to_scan", "scan_sleep_millisecs", "alloc_sleep_millisecs",
                 "max_ptes_none", "defrag"):
        value = read(thp / "khugepaged" / name, "")
        if value.isdigit():
            khugepaged[name] = int(value)
    import resource

    return LiveMachine(
        mem_total=meminfo.get("MemTotal", 0) * 1024,
        mem_available=meminfo.get("MemAvailable", 0) * 1024,
        hpage_size=int(read(thp / "hpage_pmd_size", str(2 << 20))),
        thp_enabled=_bracketed(read(thp / "enabled", "never")),
        thp_defrag=_bracketed(read(thp / "defrag", "madvise")),
        khugepaged=khugepaged,
        cpus=set(os.sched_getaffinity(0)),
        root=os.geteuid() == 0,
        nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        cachestat=cachestat_works(),
    )


def mount_of(path: str | Path) -> tuple[str, str]:
    """(mount point, file system type) of the mount holding ``path``."""
    target = os.path.realpath(path)
    best = ("/", "unknown")
    with open("/proc/self/mounts") as f:
        for line in f:
            words = line.split()
            if len(words) < 3:
                continue
            mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), words[1])
            inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best[0]):
                best = (mnt, words[2])
    return best


def read_ahead_kb(path: str | Path) -> int | None:
    """The read_ahead_kb of the backing device of ``path``'s file system (its bdi)."""
    dev = os.stat(path).st_dev
    try:
        return int(Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
                   .read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------ THP


def _gfp_words(gfp: int | None) -> str:
    if gfp is None:
        return "no huge pages"
    if gfp & __GFP_DIRECT_RECLAIM:
        return "huge pages with direct compaction"
    if gfp & __GFP_KSWAPD_RECLAIM:
        return "huge pages without direct compaction (waking kswapd)"
    return "huge pages without direct compaction"


def thp_advice(want_gfp: int | None, madvised: bool, enabled: str, defrag: str) -> str | None:
    """The madvise that gives a mapping the huge page faults of a simulated VMA on this
    machine (THP ``enabled`` and ``defrag``): ``nohugepage`` when it has none
    (``want_gfp`` None), else ``hugepage`` (MADV_HUGEPAGE) or ``none`` (no advice) whose
    ``vma_thp_gfp_mask`` is ``want_gfp``, the simulated VMA's own advice first; None when
    neither is."""
    if want_gfp is None:
        return "nohugepage"
    order = ("hugepage", "none") if madvised else ("none", "hugepage")
    for advice in order:
        hugepage = advice == "hugepage"
        if (enabled in ("always", "madvise") and thp_vma_allowable(enabled, hugepage)
                and vma_thp_gfp_mask(defrag, hugepage) == want_gfp):
            return advice
    return None


def _machine_thp(enabled: str, defrag: str) -> str:
    def gives(hugepage: bool) -> str:
        allowed = enabled in ("always", "madvise") and thp_vma_allowable(enabled, hugepage)
        return _gfp_words(vma_thp_gfp_mask(defrag, hugepage) if allowed else None)

    return (f"this machine's THP (enabled {enabled}, defrag {defrag}) gives a madvised "
            f"region {gives(True)} and any other {gives(False)}")


# ------------------------------------------------------------------ the plan


@dataclass
class Planned:
    """One counterpart of the plan, with what it takes."""

    path: str  # its key path in the config: workloads.2 (or inside a phases step)
    spec: WorkerSpec
    memory: int = 0  # bytes it may hold at most
    disk: int = 0  # bytes of file data it writes
    inodes: int = 0
    how: str = ""
    skipped: bool = False  # left out (a step without the permission it needs, as asked)


@dataclass
class Plan:
    config: ExperimentConfig
    source: str
    workdir: Path
    fstype: str
    workloads: list[Planned] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _flatten(specs: list[tuple[str, str, dict[str, Any]]], config: ExperimentConfig
             ) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, kind, params) of every workload, those of ``phases`` steps too, with the
    start and stop the phases workload gives them (workloads/phases.py)."""
    out = []
    for i, (path, kind, params) in enumerate(specs):
        if kind != "phases":
            out.append((path, kind, {**params, "name": params.get("name") or f"{kind}-{i}"}))
            continue
        offset = float(params.get("start") or 0.0)
        name = params.get("name") or f"phases-{i}"
        children = []
        for k, step in enumerate(params.get("steps") or []):
            end = offset + float(step["duration"])
            for j, child in enumerate(step.get("workloads") or []):
                c = {key: v for key, v in child.items() if key != "kind"}
                c["start"] = offset + float(c.get("start") or 0.0)
                c["stop"] = end if c.get("stop") is None else min(end, offset + c["stop"])
                c["name"] = c.get("name") or f"{name}.{k}.{child['kind']}"
                children.append((f"{path}.steps.{k}.workloads.{j}", child["kind"], c))
            offset = end
        out.extend(_flatten(children, config))
    return out


def _what_ifs(config: ExperimentConfig, source: str) -> None:
    checks = (
        ("defrag.enabled", config.defrag.enabled, False, "no kernel defragments slab caches"),
        ("buddy.free_list_order", config.buddy.free_list_order, "lifo",
         "the kernel's free lists are LIFO"),
        ("buddy.pcp", config.buddy.pcp, True, "the kernel's per-CPU lists cannot be turned off"),
        ("buddy.grouping_by_mobility", config.buddy.grouping_by_mobility, True,
         "the kernel groups by mobility on any machine of this size"),
        ("compaction.slab_movable", config.compaction.slab_movable, False,
         "no kernel's compaction moves slab pages"),
    )
    def shown(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    for key, value, real, why in checks:
        if value != real:
            raise FragsimError(f"{source}: {key}: expected {shown(real)} for --real ({why}), "
                               f"got {shown(value)}: a what-if runs in simulation only")


class _Planner:
    """Checks one config against this machine and DIR, and plans its counterparts."""

    def __init__(self, config: ExperimentConfig, source: str, workdir: Path,
                 machine: LiveMachine, seed: int) -> None:
        self.config, self.source, self.machine, self.seed = config, source, machine, seed
        self.mount, self.fstype = mount_of(workdir)
        self.plan = Plan(config, source, workdir, self.fstype)
        self.free_cpu: list[str] = []

    def fail(self, path: str, key: str, message: str) -> None:
        raise FragsimError(f"{self.source}: {path}.{key}: {message}")

    def plan_all(self) -> Plan:
        config = self.config
        _what_ifs(config, self.source)
        raw = [(f"workloads.{i}", spec.kind, dict(spec.model_extra or {}))
               for i, spec in enumerate(config.workloads)]
        for path, kind, _ in raw:  # refuse the top-level kinds by name first
            self._kind(path, kind)
        for path, kind, params in _flatten(raw, config):
            self._kind(path, kind)
            index = len(self.plan.workloads)
            spec = WorkerSpec(index=index, name=params["name"], kind=kind, params=params,
                              seed=self.seed, hpage_size=self.machine.hpage_size,
                              measure_from=config.measure_from, duration=config.duration)
            planned = Planned(path, spec, memory=WORKER_BYTES)
            spec.cpu = self._cpu(path, params)
            getattr(self, f"_{kind}")(planned, params)
            if not planned.skipped:
                self.plan.workloads.append(planned)
        if self.free_cpu:
            which = ("every workload" if len(self.free_cpu) == len(self.plan.workloads)
                     else ", ".join(self.free_cpu))
            self.plan.notes.append(
                f"{which}: cpu: round_robin (the default) moves every "
                "operation to the next CPU, which no process does; each runs as one process "
                "where the scheduler puts it (cpu: any)")
        return self.plan

    def _kind(self, path: str, kind: str) -> None:
        if kind in COUNTERPARTS or kind == "phases":
            return
        why = NO_COUNTERPART.get(kind, "fragsim cannot run a workload of one's own on the "
                                       "live kernel")
        raise FragsimError(f"{self.source}: {path}.kind: expected a kind with a real "
                           f"counterpart for --real ({', '.join(COUNTERPARTS)}), got {kind} "
                           f"({why})")

    def _cpu(self, path: str, params: dict[str, Any]) -> int | None:
        cpu = params.get("cpu", "round_robin")
        if cpu == "random":
            self.fail(path, "cpu", "expected a CPU, any or round_robin for --real, got random "
                      "(a random CPU for every operation: no process runs so)")
        if isinstance(cpu, int):
            if cpu not in self.machine.cpus:
                allowed = ", ".join(map(str, sorted(self.machine.cpus)))
                self.fail(path, "cpu", f"expected a CPU this machine lets fragsim run on "
                          f"({allowed}), got {cpu}")
            return cpu
        if cpu == "round_robin":
            self.free_cpu.append(path)
        return None

    def _advice(self, path: str, key: str, want_gfp: int | None, madvised: bool,
                want: str) -> str:
        m = self.machine
        advice = thp_advice(want_gfp, madvised, m.thp_enabled, m.thp_defrag)
        if advice is None:
            self.fail(path, key, f"expected a THP mode this machine can run, got {want} "
                      f"({_gfp_words(want_gfp)}); {_machine_thp(m.thp_enabled, m.thp_defrag)}; "
                      "fragsim does not change /sys/kernel/mm/transparent_hugepage")
        return advice

    # the kinds

    def _anon(self, planned: Planned, p: dict[str, Any]) -> None:
        path, spec, m = planned.path, planned.spec, self.machine
        if p.get("pinned_share"):
            self.fail(path, "pinned_share", "expected 0 for --real, got "
                      f"{p['pinned_share']} (long-term GUP pins have no user-space "
                      "counterpart fragsim can make)")
        madvised = bool(p.get("madvise"))
        allowed = thp_vma_allowable(p["thp"], madvised)
        want_gfp = vma_thp_gfp_mask(p["defrag"], madvised) if allowed else None
        spec.advice = self._advice(path, "thp", want_gfp, madvised,
                                   f"thp: {p['thp']}, madvise: {str(madvised).lower()}, "
                                   f"defrag: {p['defrag']}")
        spec.thp = want_gfp is not None
        until = p.get("fill_until_available")
        size = p.get("size")
        if until is not None:
            if until < m.margin:
                self.fail(path, "fill_until_available", f"expected at least the margin fragsim "
                          f"keeps free for --real ({size_text(m.margin)}), got "
                          f"{size_text(until)}")
            room = max(0, m.mem_available - until)
            size = room if size is None else min(size, room)
        elif size is None:
            size = 256 << 20  # the model's DEFAULT_SIZE
        spec.vma_bytes = max(PAGE_SIZE, size // PAGE_SIZE * PAGE_SIZE)
        planned.memory += spec.vma_bytes
        planned.how = (f"mmap {size_text(spec.vma_bytes)}, madvise {spec.advice}, written at "
                       f"{size_text(p['grow_rate'])}/s, release {p['release']}")
        if spec.thp:
            self._khugepaged(path, p.get("khugepaged") or {})

    def _khugepaged(self, path: str, k: dict[str, Any]) -> None:
        real = self.machine.khugepaged
        pairs = (("pages_to_scan", "pages_to_scan", k.get("pages_to_scan"), 1),
                 ("scan_sleep", "scan_sleep_millisecs", k.get("scan_sleep"), 1000),
                 ("alloc_sleep", "alloc_sleep_millisecs", k.get("alloc_sleep"), 1000),
                 ("max_ptes_none", "max_ptes_none", k.get("max_ptes_none"), 1),
                 ("defrag", "defrag", k.get("defrag"), 1))
        for key, name, value, scale in pairs:
            if value is None or name not in real:
                continue
            mine = int(round(float(value) * scale))
            if mine != real[name]:
                self.plan.notes.append(
                    f"{path}.khugepaged.{key}: {value} in the config, {real[name]} on this "
                    f"machine (khugepaged/{name}); the machine's applies")
        if k.get("enabled") is False:
            self.plan.notes.append(f"{path}.khugepaged.enabled: false in the config; the "
                                   "machine's khugepaged scans the mapping all the same")

    def _need_fs(self, path: str, key: str, want: str) -> None:
        fs = self.fstype
        ok = fs == want if want in ("ext4", "xfs", "tmpfs") else fs not in MEMORY_FS
        if not ok:
            self.fail(path, key, f"expected the file system of --workdir for --real, got "
                      f"{want} ({self.mount} is {fs}: give a --workdir on {want}, or set "
                      f"{key}: {'tmpfs' if fs in MEMORY_FS else 'disk'})")

    def _page_cache(self, planned: Planned, p: dict[str, Any]) -> None:
        path, spec, m = planned.path, planned.spec, self.machine
        if p["fs"] == "tmpfs":
            self.fail(path, "fs", "expected a disk file system for --real, got tmpfs (reading "
                      "a tmpfs file brings no page into the cache: its pages are made when "
                      "written)")
        self._need_fs(path, "fs", p["fs"])
        if not p.get("large_folios", True):
            self.fail(path, "large_folios", "expected true for --real, got false (the "
                      "pre-folio what-if: the live kernel uses large folios)")
        if (p.get("reread") or p.get("limit") is not None) and not m.cachestat:
            self.fail(path, "reread", "expected 0 and no limit on a kernel without "
                      "cachestat(2) (Linux 6.5), which rereads and the limit read")
        device = read_ahead_kb(self.plan.workdir)
        if device is not None and device != p["read_ahead_kb"]:
            self.plan.notes.append(f"{path}.read_ahead_kb: {p['read_ahead_kb']} in the config, "
                                   f"{device} for the device of --workdir; the device's "
                                   "applies")
        config = self.config
        stop = config.duration if p.get("stop") is None else min(p["stop"], config.duration)
        reading = max(0.0, stop - float(p.get("start") or 0.0)) * p["rate"]
        size = p["file_size"]
        if p["pattern"] == "random":
            files = 1
        elif p.get("files") is not None:  # the data set: read in turn, round and round
            files = p["files"]
        else:  # each file read once, as in the model, until the pool exceeds memory
            pool = min(reading * (1 - p["reread"]), m.mem_total + size)
            files = max(1, math.ceil(pool / size))
        spec.pool_files = files
        planned.disk = files * size
        planned.inodes = files
        planned.how = (f"{files} file{'s' * (files != 1)} of {size_text(size)} written "
                       f"first, read {p['pattern']}ly in {size_text(p['read_size'])} reads at "
                       f"{size_text(p['rate'])}/s")

    def _fs_churn(self, planned: Planned, p: dict[str, Any]) -> None:
        path, m = planned.path, self.machine
        want = "tmpfs" if p["fs"] == "tmpfs" else "disk"
        self._need_fs(path, "fs", want)
        cache = p.get("inode_cache")
        if cache is not None and INODE_CACHES.get(self.fstype, cache) != cache:
            self.fail(path, "inode_cache", f"expected {INODE_CACHES[self.fstype]} (the inode "
                      f"cache of {self.fstype}, the file system of --workdir), got {cache}")
        if p.get("lifetime") is not None:
            self.fail(path, "lifetime", "expected none for --real (the steady state has no "
                      "real counterpart yet: files created then a share unlinked), got "
                      f"{p['lifetime']}")
        files = p["files"]
        opened = math.ceil(files * p["open_share"] * 1.05) + 64 if p["open_share"] else 0
        if opened > m.nofile:
            self.fail(path, "open_share", f"expected at most {m.nofile} open files "
                      f"(RLIMIT_NOFILE), got {p['open_share']} of {files} files")
        block = os.statvfs(self.plan.workdir).f_frsize or 4096
        data = files * (-(-p["max_bytes"] // block) * block)
        dirs = -(-files // p["dir_size"]) if p["dir_size"] else 0
        planned.disk = data + dirs * block
        planned.inodes = files + dirs
        planned.memory += files * FILE_SLAB_BYTES + (data if self.fstype in MEMORY_FS else 0)
        planned.how = (f"{files} files of {p['min_bytes']}-{p['max_bytes']} B created at "
                       f"{p['create_rate']:g}/s, {1 - p['keep']:.0%} of them unlinked at "
                       f"{p['delete_rate']:g}/s")

    def _thp_probe(self, planned: Planned, p: dict[str, Any]) -> None:
        path, spec, m = planned.path, planned.spec, self.machine
        order = int(math.log2(m.hpage_size // PAGE_SIZE))
        if p["order"] != order:
            self.fail(path, "order", f"expected {order} for --real (a probe's allocation is a "
                      f"huge page fault, of HPAGE_PMD_ORDER), got {p['order']}")
        gfp = GFP_TRANSHUGE_LIGHT if p["gfp"] == "light" else GFP_TRANSHUGE
        spec.advice = self._advice(path, "gfp", gfp, p["gfp"] == "direct", p["gfp"])
        held = math.floor(p["hold"] / p["interval"]) + 2
        planned.memory += held * m.hpage_size
        planned.how = (f"a {size_text(m.hpage_size)} mapping every "
                       f"{format_duration(p['interval'])}, madvise {spec.advice}")

    def _fragment(self, planned: Planned, p: dict[str, Any]) -> None:
        path, spec, m = planned.path, planned.spec, self.machine
        for key in ("unmovable_share", "slab_share"):
            if p.get(key):
                self.fail(path, key, f"expected 0 for --real, got {p[key]} (kernel pages and "
                          "slab objects cannot be allocated from user space)")
        fill, until = p.get("fill"), p.get("fill_until_available")
        if until is not None and until < m.margin:
            self.fail(path, "fill_until_available", f"expected at least the margin fragsim "
                      f"keeps free for --real ({size_text(m.margin)}), got {size_text(until)}")
        if fill is None and until is None:
            fill = 0.75  # the model's DEFAULT_FILL
        if fill is None:
            size = None
        elif isinstance(fill, int) and fill > 1:
            size = fill
        else:
            size = int(float(fill) * m.mem_total)
        if until is not None:
            room = max(0, m.mem_available - until)
            size = room if size is None else min(size, room)
        spec.vma_bytes = max(PAGE_SIZE, size // PAGE_SIZE * PAGE_SIZE)
        planned.memory += spec.vma_bytes
        planned.how = (f"mmap {size_text(spec.vma_bytes)} (madvise nohugepage) written at "
                       f"{size_text(p['fill_rate'])}/s, then {p['keep_one_in'] - 1} of every "
                       f"{p['keep_one_in']} pages freed")

    def _compact_memory(self, planned: Planned, p: dict[str, Any]) -> None:
        if not self.machine.root:
            if p.get("without_root", "stop") == "skip":
                planned.skipped = True
                self.plan.notes.append(
                    f"{planned.path} (compact_memory): skipped, as without_root: skip asks: "
                    f"writing /proc/sys/vm/compact_memory needs root, and this is uid "
                    f"{os.geteuid()}")
                return
            self.fail(planned.path, "kind", "expected root for compact_memory under --real "
                      "(writing /proc/sys/vm/compact_memory needs it), got uid "
                      f"{os.geteuid()}: run as root, set without_root: skip, or leave this "
                      "workload out")
        planned.how = "echo 1 > /proc/sys/vm/compact_memory at " + ", ".join(
            format_duration(t) for t in sorted(p["at"]))


def plan_run(config: ExperimentConfig, source: str, workdir: str | Path,
             machine: LiveMachine, seed: int | None = None) -> Plan:
    """Check ``config`` against this machine and DIR, without side effects: the plan,
    or a FragsimError naming what cannot run (see the module docstring)."""
    plan = _Planner(config, source, Path(workdir), machine,
                    config.seed if seed is None else seed).plan_all()
    check_memory(plan, machine)
    check_disk(plan)
    return plan


def check_memory(plan: Plan, machine: LiveMachine) -> None:
    """Refuse a plan whose workloads, all holding their most at once, would take more
    than MemAvailable less the margin."""
    need = sum(w.memory for w in plan.workloads)
    if need > machine.budget:
        biggest = max(plan.workloads, key=lambda w: w.memory)
        raise FragsimError(
            f"{plan.source}: {biggest.path}: expected workloads that fit this machine's free "
            f"memory for --real (at most {size_text(machine.budget)}: MemAvailable "
            f"{size_text(machine.mem_available)} less a margin of "
            f"{size_text(machine.margin)}), got {size_text(need)} in all, "
            f"{size_text(biggest.memory)} of it here ({biggest.spec.kind})")


def check_disk(plan: Plan) -> None:
    """Refuse a plan whose files would not fit DIR's file system (less 5 % of it)."""
    st = os.statvfs(plan.workdir)
    need = sum(w.disk for w in plan.workloads)
    inodes = sum(w.inodes for w in plan.workloads)
    room = st.f_bavail * st.f_frsize - int(st.f_blocks * st.f_frsize * DISK_MARGIN_SHARE)
    inode_room = st.f_favail - int(st.f_files * DISK_MARGIN_SHARE) if st.f_files else None
    if need and need > room:
        biggest = max(plan.workloads, key=lambda w: w.disk)
        raise FragsimError(
            f"{plan.source}: {biggest.path}: expected files that fit --workdir's file system "
            f"for --real (at most {size_text(max(0, room))} free there, less 5 % of it), "
            f"got {size_text(need)} in all, {size_text(biggest.disk)} of it here "
            f"({biggest.spec.kind})")
    if inode_room is not None and inodes > inode_room:
        raise FragsimError(f"{plan.source}: workloads: expected files that fit --workdir's "
                           f"inodes for --real (at most {max(0, inode_room)}), got {inodes}")


def check_workdir(workdir: str | Path) -> Path:
    path = Path(workdir)
    if not path.is_dir():
        raise FragsimError(f"--workdir {workdir}: expected a directory, got "
                           + ("a file" if path.exists() else "no such directory"))
    if not os.access(path, os.W_OK | os.X_OK):
        raise FragsimError(f"--workdir {workdir}: expected a directory fragsim may write in, "
                           "got one it may not")
    return path


# ------------------------------------------------------------------ the counterparts at work


class Workers:
    """The counterpart processes of a plan: started and prepared before t0, set going
    at t0, watched while the recording runs (``wait``: a failure, or MemAvailable below
    half the margin, ends the run), stopped, and their directory deleted (``close``)."""

    def __init__(self, plan: Plan, root: Path, machine: LiveMachine) -> None:
        self.plan, self.root, self.machine = plan, root, machine
        self.ctx = multiprocessing.get_context("spawn")
        n = len(plan.workloads)
        self.queue = self.ctx.Queue()
        self.stats = self.ctx.Array("d", max(1, n) * STATS_PER_WORKER, lock=False)
        self.go_event, self.stop_event = self.ctx.Event(), self.ctx.Event()
        self.t0 = self.ctx.Value("d", 0.0, lock=False)
        self.procs: list[Any] = []
        self.ready: dict[int, dict[str, Any]] = {}
        self.reports: dict[int, dict[str, Any]] = {}
        self.failure: str | None = None
        self.stopped_by: str | None = None
        self.setup_s = 0.0
        self.stopped = False
        self.files_left: list[str] = []
        self.killed: list[str] = []  # counterparts that had to be SIGKILLed
        self.floor = machine.margin // 2
        for w in plan.workloads:
            w.spec.run_directory = str(root)
            if w.spec.kind in ("page_cache", "fs_churn"):
                w.spec.directory = str(root / f"{w.spec.index:02d}-{w.spec.name}")

    def start(self) -> None:
        started = time.monotonic()
        deadline = started + SETUP_LIMIT_S
        for w in self.plan.workloads:
            proc = self.ctx.Process(
                target=worker_main, name=f"fragsim-real-{w.spec.name}", daemon=True,
                args=(w.spec, self.queue, self.stats, self.go_event, self.t0, self.stop_event,
                      os.getpid(), deadline))
            proc.start()
            self.procs.append(proc)
        while len(self.ready) < len(self.procs):
            self._drain(0.1)
            self._check_alive()
            if self.failure is not None:
                raise WorkloadFailed(f"{self.failure}; nothing was recorded")
            if time.monotonic() > deadline:
                raise WorkloadFailed(f"the workloads' setup took longer than "
                                     f"{format_duration(SETUP_LIMIT_S)}; nothing was recorded")
        self.setup_s = time.monotonic() - started

    def go(self, t0: float) -> Workers:
        self.t0.value = t0
        self.go_event.set()
        return self

    def _name(self, index: int) -> str:
        w = self.plan.workloads[index]
        return f"{w.path} ({w.spec.kind} {w.spec.name})"

    def _drain(self, timeout: float = 0.0) -> None:
        import queue as queue_module

        wait = timeout
        while True:
            try:
                what, index, data = self.queue.get(timeout=wait) if wait else \
                    self.queue.get_nowait()
            except queue_module.Empty:
                return
            wait = 0.0
            if what == "ready":
                self.ready[index] = data
            elif what == "report":
                self.reports[index] = data
            elif what == "error" and self.failure is None:
                self.failure = f"{self._name(index)} failed: {data}"
                self.stopped_by = "workload"

    def _check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if not proc.is_alive() and i not in self.reports and self.failure is None:
                self._drain()
                if i not in self.reports and self.failure is None:
                    self.failure = (f"{self._name(i)} exited unexpectedly (status "
                                    f"{proc.exitcode})")
                    self.stopped_by = "workload"

    def wait(self, timeout: float) -> int | None:
        """1 when the run must end now (a workload failed, or memory ran low), else None
        after ``timeout`` s."""
        end = time.monotonic() + timeout
        while True:
            self._drain()
            if not self.stopped:
                self._check_alive()
            if self.failure is None:
                available = _mem_available()
                if available is not None and available < self.floor:
                    self.failure = (f"MemAvailable fell to {size_text(available)}, below half "
                                    f"the margin ({size_text(self.floor)})")
                    self.stopped_by = "memory"
            if self.failure is not None:
                return 1
            left = end - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(GUARD_EVERY_S, left))

    def stop(self) -> int:
        """Ask every counterpart to stop and release; SIGTERM, then SIGKILL, the ones
        that have not exited after STOP_GRACE_S each. 1 if a workload failed."""
        if not self.stopped:
            self.stopped = True
            self.stop_event.set()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    for i, proc in enumerate(self.procs):
                        if proc.is_alive():
                            if sig == signal.SIGKILL:
                                self.killed.append(self.plan.workloads[i].spec.name)
                            os.kill(proc.pid, sig)
                end = time.monotonic() + STOP_GRACE_S
                while time.monotonic() < end and any(p.is_alive() for p in self.procs):
                    self._drain(0.05)
                if not any(p.is_alive() for p in self.procs):
                    break
            for proc in self.procs:
                proc.join(timeout=1.0)
            self._drain(0.05)
        return 1 if self.failure is not None else 0

    def close(self) -> None:
        """Stop the counterparts and delete the run's directory in DIR, with Ctrl-C and
        SIGTERM held off meanwhile (the clean-up is not cut short)."""
        held = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        main = threading.current_thread() is threading.main_thread()
        try:
            if main:
                for sig in held:
                    signal.signal(sig, signal.SIG_IGN)
            self.stop()
            shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                self.files_left = [str(p) for p in self.root.rglob("*")] or [str(self.root)]
            self.queue.close()
        finally:
            if main:
                for sig, handler in held.items():
                    signal.signal(sig, handler)

    def series(self, t: float, values: dict[tuple[str, str], float]) -> None:
        """The counterparts' own series in a sample: the CPU each counterpart's process
        last ran on (``workload_cpu``, /proc/PID/stat's ``processor``: where the
        scheduler put it), each anon's resident pages by order (from its smaps), and the
        THP probes' attempts and success as a run's probe writes them (instead of
        vmstat's THP faults of the whole machine)."""
        stats = self.stats[:]
        order = int(math.log2(self.machine.hpage_size // PAGE_SIZE))
        for w, proc in zip(self.plan.workloads, self.procs, strict=False):
            cpu = last_cpu(proc.pid) if proc.pid is not None else None
            if cpu is not None:
                values[("workload_cpu", w.spec.name)] = cpu
        probes = []
        for w in self.plan.workloads:
            base = w.spec.index * STATS_PER_WORKER
            mine = dict(zip(COUNTERPARTS[w.spec.kind].STATS, stats[base:base + STATS_PER_WORKER],
                            strict=False))
            if w.spec.kind == "anon":
                values[("anon_pages_order0", w.spec.name)] = mine["anon_pages_order0"]
                values[(f"anon_pages_order{order}", w.spec.name)] = mine["anon_pages_huge"]
            elif w.spec.kind == "thp_probe":
                probes.append(mine)
        if not probes:
            return
        for key in ("thp_attempts", "thp_success_cumulative", "thp_success_rate"):
            values.pop((key, ""), None)
        attempts = sum(p["attempts"] for p in probes)
        if attempts:
            recent = sum(p["recent_attempts"] for p in probes)
            values[("thp_attempts", "")] = attempts
            values[("thp_success_cumulative", "")] = sum(p["successes"] for p in probes) / attempts
            values[("thp_success_rate", "")] = (sum(p["recent_successes"] for p in probes)
                                                / recent)


def last_cpu(pid: int) -> int | None:
    """The CPU a process last ran on (/proc/PID/stat field 39, ``processor``); None when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[36]) if len(fields) > 36 else None


def _mem_available() -> int | None:
    try:
        return parse_meminfo(Path("/proc/meminfo").read_text()).get("MemAvailable", 0) * 1024
    except OSError:
        return None


# ------------------------------------------------------------------ the run


@dataclass
class RealResult:
    """How a real run went (the CLI's lines and exit status come from it)."""

    out: Path
    record: RecordResult
    plan: Plan
    summary: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    setup_s: float = 0.0
    files_left: list[str] = field(default_factory=list)


def _time_average(points: list[tuple[float, float]], start: float) -> float:
    from sim.runner import _time_average as trapezoids

    if not points:
        return math.nan
    times, values = (np.array(x, dtype=float) for x in zip(*points, strict=True))
    return trapezoids(times, values, start)


def pick_variant(configs: dict[str, ExperimentConfig], variant: str | None, source: str
                 ) -> tuple[str, ExperimentConfig]:
    if variant is not None:
        if variant not in configs:
            raise FragsimError(f"--variant: expected one of {', '.join(configs)}, got "
                               f"{variant!r}")
        return variant, configs[variant]
    if len(configs) > 1:
        raise FragsimError(f"{source}: variants: expected one variant for --real (one run of "
                           f"the live kernel), got {len(configs)} ({', '.join(configs)}): "
                           "choose one with --variant NAME")
    return next(iter(configs.items()))


def run_real(config_path: str | Path, workdir: str | Path, overrides: Sequence[str] = (),
             out: str | Path | None = None, seed: int | None = None,
             variant: str | None = None, plots: bool = True,
             progress: Callable[..., None] | None = None,
             notify: Callable[[str], None] | None = None,
             machine: LiveMachine | None = None, kernel: LiveKernel | None = None
             ) -> RealResult:
    """Run a config's workloads on the live kernel while recording it (see the module
    docstring); write the result directory and return how it went. Every refusal
    comes before anything is created."""
    from sim.experiment import resolve_variants

    source = str(config_path)
    configs = resolve_variants(config_path, list(overrides))
    chosen, config = pick_variant(configs, variant, source)
    workdir = check_workdir(workdir)
    machine = machine or read_live_machine(kernel)
    seed = config.seed if seed is None else seed
    plan = plan_run(config, source, workdir, machine, seed)
    for note in plan.notes:
        if notify is not None:
            notify(f"warning: {note}")
    kernel = kernel or LiveKernel()
    out_dir = Path(out) if out is not None else Path("results") / config.name
    duration = float(config.duration)
    record = RecordResult(out_dir)
    result = RealResult(out_dir, record, plan)
    with RunDirectory(out_dir) as run_dir:
        root = Path(tempfile.mkdtemp(prefix=f"fragsim-real-{config.name}-", dir=workdir))
        workers = Workers(plan, root, machine)
        started = time.monotonic()
        try:
            workers.start()
            result.setup_s = workers.setup_s
            take_snapshot(run_dir.path / "start", kernel)
            sampler = Sampler(kernel, SLAB_MIN_PAGES)
            writer = _SeriesWriter(run_dir.path / "timeseries.csv")
            try:
                recording = _Recording(
                    sampler, writer, record, None, float(config.sample_every), duration,
                    duration, progress, start_driver=lambda: workers.go(sampler.origin),
                    extra=workers.series,
                    at_limit=lambda: take_snapshot(run_dir.path / "final", kernel))
                recording.run(notify)
            finally:
                writer.close()
        finally:
            workers.close()
        result.failure = workers.failure
        result.files_left = workers.files_left
        if not (run_dir.path / "final").exists():
            take_snapshot(run_dir.path / "final", kernel)
        if recording.costs:
            record.sample_cost_mean_s = sum(recording.costs) / len(recording.costs)
            record.sample_cost_max_s = max(recording.costs)
        record.skipped = dict(sampler.skipped)
        record.complete = (record.stopped_by == "duration" and workers.failure is None
                           and not workers.files_left)
        summary = _summary(sampler, writer, record, workers, config, time.monotonic() - started)
        damon = damon_activity(run_dir.path)
        if damon:
            summary["damon"] = damon
        result.summary = summary
        _write(run_dir.path, result, config, chosen, seed, workdir, root, kernel, sampler)
    if notify is not None:
        for line in damon_notes(result.summary):
            notify(line)
    if plots:
        from sim.runner import _plot_kept

        _plot_kept(out_dir)
    return result


def _summary(sampler: Sampler, writer: _SeriesWriter, record: RecordResult, workers: Workers,
             config: ExperimentConfig, wall_s: float) -> dict[str, Any]:
    summary = record_summary(sampler, writer, record, None, wall_s)
    for key in ("command", "command_status"):
        summary.pop(key, None)
    summary["source"] = "real"
    summary["complete"] = record.complete
    start = config.measure_from if config.measure_from < config.duration else 0.0
    summary["measure_from_s"] = start
    order = sampler.pageblock_order
    summary[f"avail{order}_time_avg"] = _time_average(writer.avail, start)
    reports = {w.spec.name: {"kind": w.spec.kind, "how": w.how,
                             **workers.reports.get(w.spec.index, {
                                 "headline": "no report: it did not stop in time and was "
                                             "killed"})}
               for w in workers.plan.workloads}
    probes = [r for r in reports.values() if r["kind"] == "thp_probe"]
    if probes:  # the probes' own attempts, from measure_from, as a run counts them
        tried = sum(r.get("measured_attempts", 0) for r in probes)
        ok = sum(r.get("measured_successes", 0) for r in probes)
        summary["thp_success_rate"] = ok / tried if tried else math.nan
        summary["thp_attempts"], summary["thp_successes"] = tried, ok
    summary["workloads"] = reports
    summary["setup_s"] = workers.setup_s
    summary["stopped_by"] = workers.stopped_by or record.stopped_by
    if workers.failure is not None:
        summary["failure"] = workers.failure
    summary["files_left"] = workers.files_left
    if workers.killed:
        summary["killed"] = workers.killed
    return summary


def _write(path: Path, result: RealResult, config: ExperimentConfig, variant: str, seed: int,
           workdir: Path, root: Path, kernel: LiveKernel, sampler: Sampler) -> None:
    """config.yaml (the resolved config, as a run writes it: ``fragsim run`` of it runs
    the simulated twin), real.yaml (the live kernel and what each workload did) and
    summary.json (``source: real``)."""
    from sim.runner import _config_dict

    record = result.record
    write_atomic(path / "config.yaml", yaml.safe_dump({
        "fragsim_version": __version__, "seeds": [seed],
        "variants": {variant: _config_dict(config)}}, sort_keys=False))
    write_atomic(path / "real.yaml", yaml.safe_dump({
        "fragsim_version": __version__,
        "kind": "real",
        "name": result.out.name,
        "config": result.plan.source,
        "variant": variant,
        "seed": seed,
        "workdir": str(workdir),
        "directory": str(root),
        "every": float(config.sample_every),
        "duration": float(config.duration),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "root": os.geteuid() == 0,
        "workloads": [{"path": w.path, "kind": w.spec.kind, "name": w.spec.name,
                       "how": w.how, "pid": result.summary["workloads"][w.spec.name].get("pid")}
                      for w in result.plan.workloads],
        "notes": result.plan.notes,
        "kernel": kernel_config(kernel, sampler.page_size),
    }, sort_keys=False))
    summary = result.summary
    write_json(path / "summary.json", {
        "fragsim_version": __version__,
        "name": result.out.name,
        "kind": "real",
        "source": "real",
        "complete": record.complete,
        "variants": {VARIANT: {"runs": [summary], **aggregate([summary])}},
    })


__all__ = ["run_real", "plan_run", "LiveMachine", "read_live_machine", "thp_advice",
           "RealResult", "Workers"]
