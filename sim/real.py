"""Real counterparts of fragsim's workloads: what ``fragsim run CONFIG --real`` does on
the live kernel, one class per workload kind that has one.

Each runs in a process of its own (sim/realrun.py starts them and records the kernel
meanwhile), paced by wall time from the run's t0 (the first sample) as the simulated
workload is paced by simulated time: the operations due by now (``rate x elapsed``) are
done every ``tick``, so a counterpart that falls behind catches up, and its report says
what rate it achieved. Each follows its simulated workload's parameters
(workloads/synthetic.py, workloads/page_cache.py, workloads/fs_churn.py):

- ``anon``: one anonymous mapping of ``size`` (2 MiB-aligned), ``madvise``d for its THP
  mode (``MADV_HUGEPAGE``, nothing, or ``MADV_NOHUGEPAGE``: sim/realrun.py
  ``thp_advice`` picks the one whose huge page faults this machine's THP settings make
  what the simulated VMA's are); pages written lowest address first at ``grow_rate``
  (a write in an empty 2 MiB range that brings all 512 pages in, by ``mincore``, was a
  THP fault), then replaced at ``churn_rate``; ``shrink_at``/``shrink_to``; frees are
  ``madvise(MADV_DONTNEED)`` of random resident pages (``release: random``) or of the
  lowest resident addresses first (``address``); ``fill_until_available`` reads
  MemAvailable before each tick's writes; at ``stop`` with ``free_at_stop`` it frees
  everything in its release order. Departure: a page freed inside a THP splits it (the
  kernel's behaviour) where the model frees the whole THP.
- ``page_cache``: a pool of files of ``file_size`` written in DIR before t0 (fsync,
  then ``POSIX_FADV_DONTNEED``, so they start uncached), read with ``read_size`` reads at
  ``rate``: ``sequential`` reads each file start to end, opening the next (a new open
  file, fresh readahead state) at EOF, and wraps round the pool; ``random`` preads
  random aligned offsets of one file. ``fadvise`` is ``posix_fadvise`` on each opened
  file. ``reread``: that share of reads picks a page of a file read before and, when
  ``cachestat`` says it is cached, reads it (``folio_mark_accessed``); ``limit``: a
  tick's reads are skipped while the files' cached pages (``cachestat``) reach it.
- ``fs_churn``: ``files`` files of ``min_bytes..max_bytes`` (uniform) created at
  ``create_rate`` in a new directory every ``dir_size`` files, written in
  ``write_size`` calls, ``open_share`` of them kept open; after ``delete_after`` a
  random ``1 - keep`` of them unlinked at ``delete_rate``. Directories stay.
- ``paced_from`` (``page_cache``, ``fs_churn``): the rate's clock starts then, so a
  worker that starts later works as fast as this machine lets it until it is on pace;
  the model's ``catch_up`` has no part here.
- ``thp_probe``: every ``interval`` a 2 MiB-aligned anonymous mapping of 2 MiB,
  ``madvise``d as ``gfp`` needs, one byte written; success when AnonHugePages
  (/proc/self/smaps_rollup) grew by 2 MiB. A success is held for ``hold`` and unmapped
  at the first attempt after it (as the model frees it); a failure at once.
- ``fragment``: a mapping (``MADV_NOHUGEPAGE``: order-0 pages, as the model's fill)
  written at ``fill_rate`` to ``fill`` (bytes, or a share of MemTotal) or until
  MemAvailable falls to ``fill_until_available``; at ``free_at`` (default: once filled)
  ``K - 1`` of every ``keep_one_in`` pages freed in address order, at once or at
  ``free_rate``.
- ``compact_memory``: ``echo 1 > /proc/sys/vm/compact_memory`` at each of ``at``, with
  avail and the unusable index at pageblock order before and after (root only).

As in the model, ``stop`` ends the work of ``anon``, ``page_cache`` and ``thp_probe``;
``fs_churn``, ``fragment`` and ``compact_memory`` do not look at it. What a counterpart
holds (mappings, files, open files) it holds until the run ends; then it unmaps and
closes everything and reports, from its own /proc/self/smaps, whether any mapping of it
is left. The run deletes the files once every counterpart has exited (a counterpart
whose run's process is gone deletes its own).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import shutil
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PROT_READ, PROT_WRITE = 1, 2
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 4, 14, 15
ADVICE = {"hugepage": MADV_HUGEPAGE, "nohugepage": MADV_NOHUGEPAGE, "none": None}
PR_SET_PDEATHSIG = 1
SYS_CACHESTAT = 451  # the generic syscall table's number (x86-64 and arm64 alike)
STATS_PER_WORKER = 8  # shared doubles each counterpart publishes for the samples
SMAPS_EVERY_S = 1.0  # how often anon reads its mapping's smaps for the samples
BATCH_BYTES = 64 << 20  # at most this much memory written or read in one tick
BATCH_FILES = 200  # at most this many files created or deleted in one tick


# ------------------------------------------------------------------ libc


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


class Libc:
    """The few libc calls Python's mmap module does not offer (madvise of part of a
    mapping at an address, mincore, cachestat, prctl)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap_ = libc.mmap
        self.mmap_.restype = ctypes.c_void_p
        self.mmap_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_long]
        self.munmap_ = libc.munmap
        self.munmap_.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.madvise_ = libc.madvise
        self.madvise_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.mincore_ = libc.mincore
        self.mincore_.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                  ctypes.POINTER(ctypes.c_ubyte)]
        self.syscall = libc.syscall
        self.syscall.restype = ctypes.c_long
        self.prctl = libc.prctl

    @staticmethod
    def _check(result: int, what: str) -> None:
        if result != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def mmap(self, size: int) -> int:
        addr = self.mmap_(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno()
            raise OSError(err, f"mmap of {size} bytes: {os.strerror(err)}")
        return addr

    def munmap(self, addr: int, size: int) -> None:
        if size > 0:
            self._check(self.munmap_(addr, size), "munmap")

    def madvise(self, addr: int, size: int, advice: int) -> None:
        self._check(self.madvise_(addr, size, advice), f"madvise({advice})")

    def resident(self, addr: int, size: int) -> int:
        """Pages of [addr, addr + size) resident (mincore)."""
        pages = -(-size // PAGE_SIZE)
        vec = (ctypes.c_ubyte * pages)()
        self._check(self.mincore_(addr, size, vec), "mincore")
        return sum(b & 1 for b in bytes(vec))

    def cached_pages(self, fd: int, offset: int = 0, length: int = 0) -> int:
        """Page-cache pages of a file's range (cachestat(2), Linux 6.5; length 0: to the
        end)."""
        rng, stat = _CachestatRange(offset, length), _Cachestat()
        result = self.syscall(SYS_CACHESTAT, ctypes.c_uint(fd), ctypes.byref(rng),
                              ctypes.byref(stat), ctypes.c_uint(0))
        self._check(0 if result == 0 else 1, "cachestat")
        return int(stat.nr_cache)


def cachestat_works() -> bool:
    """Whether this kernel has cachestat(2) (page_cache's reread and limit use it)."""
    libc = Libc()
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    try:
        libc.cached_pages(fd, 0, PAGE_SIZE)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


# ------------------------------------------------------------------ /proc


def mem_available_pages() -> int:
    """MemAvailable in pages."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // PAGE_SIZE
    raise OSError("/proc/meminfo: no MemAvailable")


def anon_huge_kib() -> int:
    """AnonHugePages of this process (smaps_rollup), in kB."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return 0


def smaps_of(start: int, end: int) -> list[dict[str, int]]:
    """The /proc/self/smaps entries that overlap [start, end): their range and kB
    fields (Rss, AnonHugePages, ...)."""
    found: list[dict[str, int]] = []
    entry: dict[str, int] | None = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                lo, _, hi = head.partition("-")
                a, b = int(lo, 16), int(hi, 16)
                entry = {"start": a, "end": b} if a < end and b > start else None
                if entry is not None:
                    found.append(entry)
            elif entry is not None and head.endswith(":"):
                words = line.split()
                if len(words) >= 2 and words[1].isdigit():
                    entry[head[:-1]] = int(words[1])
    return found


# ------------------------------------------------------------------ the process's context


class Stopped(Exception):
    """The run asked this counterpart to stop (its stop event, SIGTERM or the deadline)."""


@dataclass
class WorkerSpec:
    """What one counterpart process needs, from sim/realrun.py's plan (picklable)."""

    index: int
    name: str
    kind: str
    params: dict[str, Any]
    seed: int
    directory: str | None = None  # its own directory inside the run's, for files
    run_directory: str | None = None  # the run's directory inside DIR
    advice: str | None = None  # anon, fragment, thp_probe: hugepage | none | nohugepage
    thp: bool = False  # anon: THP faults are possible in its VMA
    vma_bytes: int = 0  # anon, fragment: the mapping's size
    pool_files: int = 0  # page_cache: files in the pool
    hpage_size: int = 2 << 20
    measure_from: float = 0.0
    duration: float = 0.0
    cpu: int | None = None  # pinned to this CPU (sched_setaffinity)


@dataclass
class Context:
    """The shared state of the run a counterpart sees: t0 (set at go), the stop event,
    the deadline, and its slots of the shared statistics."""

    t0: float
    stop: Any  # multiprocessing.Event
    deadline: float  # time.monotonic() past which it stops by itself
    stats: Any  # multiprocessing.Array('d') of every worker
    offset: int
    names: tuple[str, ...] = ()
    parent: int = 0  # the run's pid (0: not checked)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def check(self) -> None:
        """Stopped when SIGTERM came, the run's process is gone, the stop event is set
        or the deadline passed. The parent is looked at first: a parent killed while it
        held the stop event's lock would leave ``is_set`` waiting for ever."""
        if _terminated or (self.parent and parent_gone(self.parent)):
            raise Stopped
        if self.stop.is_set() or time.monotonic() > self.deadline:
            raise Stopped

    def sleep_until(self, t: float) -> None:
        """Sleep until t s after t0; Stopped when asked to stop meanwhile."""
        while True:
            self.check()
            left = min(self.t0 + t, self.deadline) - time.monotonic()
            if left <= 0:
                self.check()
                return
            if self.stop.wait(min(left, 0.5)):
                raise Stopped

    def publish(self, name: str, value: float) -> None:
        self.stats[self.offset + self.names.index(name)] = value


class Pace:
    """Operations due by wall time: ``rate`` per second from ``start`` (s after t0). A
    tick takes at most ``cap`` of them; the rest stay due for the next ticks, which
    follow at once (so a counterpart that fell behind still looks at its stop event and
    publishes its statistics between batches)."""

    def __init__(self, rate: float, start: float, cap: int = 1 << 30) -> None:
        self.rate, self.start, self.granted, self.cap = rate, start, 0, max(1, cap)

    def due(self, now: float) -> int:
        n = min(self.cap, max(0, int(self.rate * (now - self.start)) - self.granted))
        self.granted += n
        return n

    def restart(self, rate: float, start: float) -> None:
        self.rate, self.start, self.granted = rate, start, 0


class Region:
    """An anonymous mapping of ``size`` bytes aligned to ``align``, madvised with
    ``advice``; pages are written through a numpy view of it."""

    def __init__(self, libc: Libc, size: int, align: int, advice: str | None) -> None:
        self.libc = libc
        raw = libc.mmap(size + align)
        base = -(-raw // align) * align
        libc.munmap(raw, base - raw)
        libc.munmap(base + size, raw + size + align - (base + size))
        self.base, self.size = base, size
        code = ADVICE.get(advice or "none")
        if code is not None:
            libc.madvise(base, size, code)
        self.view = np.frombuffer((ctypes.c_char * size).from_address(base), dtype=np.uint8)
        self.closed = False

    def write(self, vpages: np.ndarray) -> None:
        """Write one byte of each page (a page fault for each one not resident)."""
        if len(vpages):
            self.view[np.asarray(vpages, dtype=np.int64) * PAGE_SIZE] = 1

    def write_run(self, first: int, count: int) -> None:
        if count > 0:
            self.view[first * PAGE_SIZE:(first + count) * PAGE_SIZE:PAGE_SIZE] = 1

    def dontneed(self, first: int, count: int) -> None:
        self.libc.madvise(self.base + first * PAGE_SIZE, count * PAGE_SIZE, MADV_DONTNEED)

    def resident(self, first: int, count: int) -> int:
        return self.libc.resident(self.base + first * PAGE_SIZE, count * PAGE_SIZE)

    def smaps(self) -> dict[str, int]:
        """Rss and AnonHugePages (kB) of the mapping, from /proc/self/smaps."""
        entries = smaps_of(self.base, self.base + self.size)
        return {key: sum(e.get(key, 0) for e in entries) for key in ("Rss", "AnonHugePages")}

    def close(self) -> list[str]:
        """Unmap; the /proc/self/smaps ranges still overlapping it (none, normally)."""
        if not self.closed:
            self.view = None
            self.libc.munmap(self.base, self.size)
            self.closed = True
        return [f"{e['start']:x}-{e['end']:x}" for e in smaps_of(self.base, self.base + self.size)]


class ResidentSet:
    """The pages of a mapping a counterpart has made resident, by index: the lowest
    holes and lowest resident pages in address order, and random resident pages."""

    def __init__(self, pages: int) -> None:
        self.mapped = np.zeros(pages, dtype=bool)
        self.list = np.empty(pages, dtype=np.int64)  # resident pages, in no order
        self.pos = np.full(pages, -1, dtype=np.int64)  # a page's slot in list
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def add(self, vpages: np.ndarray) -> None:
        vpages = np.asarray(vpages, dtype=np.int64)
        vpages = vpages[~self.mapped[vpages]]
        n = len(vpages)
        self.mapped[vpages] = True
        self.list[self.count:self.count + n] = vpages
        self.pos[vpages] = np.arange(self.count, self.count + n)
        self.count += n

    def remove(self, vpages) -> None:
        for v in np.asarray(vpages, dtype=np.int64).tolist():
            i = self.pos[v]
            if i < 0:
                continue
            last = self.list[self.count - 1]
            self.list[i] = last
            self.pos[last] = i
            self.pos[v] = -1
            self.mapped[v] = False
            self.count -= 1

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` resident pages drawn without replacement, in the order drawn."""
        n = min(n, self.count)
        if n <= 0:
            return np.empty(0, dtype=np.int64)
        if n * 8 >= self.count:
            return self.list[rng.permutation(self.count)[:n]].copy()
        chosen: dict[int, None] = {}
        while len(chosen) < n:
            for i in rng.integers(self.count, size=n - len(chosen)).tolist():
                chosen[i] = None
        return self.list[list(chosen)].copy()

    def lowest(self, n: int, resident: bool) -> np.ndarray:
        """The ``n`` lowest resident pages (or holes), in address order."""
        want = self.mapped if resident else ~self.mapped
        found: list[np.ndarray] = []
        total, start, step = 0, 0, 1 << 16
        while total < n and start < len(want):
            hits = np.flatnonzero(want[start:start + step]) + start
            found.append(hits[:n - total])
            total += len(found[-1])
            start += step
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def runs_of(vpages: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs (first, count) of pages, in the given order."""
    if not len(vpages):
        return []
    breaks = np.flatnonzero(np.diff(vpages) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(vpages)]))
    return [(int(vpages[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]


def size_text(nbytes: float) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(nbytes) >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{nbytes:.0f} B"


# ------------------------------------------------------------------ the counterparts


class RealWorkload:
    """A counterpart: ``prepare`` before t0 (files, mappings), ``run`` paced from t0,
    ``release`` at the end (unmap, close, delete), ``report`` after it."""

    kind = "workload"
    STATS: tuple[str, ...] = ()

    def __init__(self, spec: WorkerSpec, ctx: Context, libc: Libc) -> None:
        self.spec, self.ctx, self.libc = spec, ctx, libc
        self.p = spec.params
        self.rng = np.random.default_rng([spec.seed, spec.index])
        self.start = float(self.p.get("start") or 0.0)
        self.tick = float(self.p.get("tick") or 0.01)
        self.mappings_left: list[str] = []

    def paced_from(self) -> float:
        """Where the rate's clock starts: ``paced_from`` when given (the worker then
        catches up as fast as this machine lets it; ``catch_up`` is the model's stand-in
        for that speed), else ``start``."""
        since = self.p.get("paced_from")
        return self.start if since is None else float(since)

    def active(self) -> bool:
        stop = self.p.get("stop")
        return stop is None or self.ctx.now() < stop

    def ticks(self, until_inactive: bool = True):
        """Yield the time (s after t0) of each tick from ``start``; a tick that overran
        its slot skips the slots it missed."""
        k = 0
        while True:
            self.ctx.sleep_until(self.start + k * self.tick)
            now = self.ctx.now()
            if until_inactive and not self.active():
                return
            yield now
            k = max(k + 1, int((self.ctx.now() - self.start) / self.tick) + 1)

    def prepare(self) -> dict[str, Any]:
        return {}

    def run(self) -> None:
        raise NotImplementedError

    def hold(self) -> None:
        """After its work: keep what it holds until the run stops."""
        while True:
            self.ctx.sleep_until(self.ctx.now() + 0.5)

    def release(self) -> None:
        pass

    def report(self) -> dict[str, Any]:
        return {}


class RealAnon(RealWorkload):
    """``anon``: see the module docstring."""

    kind = "anon"
    STATS = ("resident_pages", "anon_pages_order0", "anon_pages_huge")

    def prepare(self) -> dict[str, Any]:
        spec = self.spec
        self.region = Region(self.libc, spec.vma_bytes, spec.hpage_size, spec.advice)
        self.vma_pages = spec.vma_bytes // PAGE_SIZE
        self.hp = spec.hpage_size // PAGE_SIZE
        self.pages = ResidentSet(self.vma_pages)
        self.written = self.freed = self.thp_faults = self.thp_fallbacks = 0
        self.peak_rss_kib = self.peak_huge_kib = 0
        self.end_smaps: dict[str, int] = {}
        self._smaps_at = -math.inf
        self._grow_debt = self._churn_debt = 0
        return {"vma_bytes": spec.vma_bytes, "advice": spec.advice}

    # faults

    def _empty_range(self, r: int) -> bool:
        lo = r * self.hp
        return lo + self.hp <= self.vma_pages and not self.pages.mapped[lo:lo + self.hp].any()

    def fault(self, n: int) -> int:
        """Write ``n`` unmapped pages, lowest address first; the first write in an empty
        2 MiB range that brought in all its pages was a THP fault. Returns the pages made
        resident."""
        if n <= 0:
            return 0
        holes = self.pages.lowest(n, resident=False)
        if not self.spec.thp:
            self.region.write(holes)
            self.pages.add(holes)
            self.written += len(holes)
            return len(holes)
        done = 0
        ranges = holes // self.hp
        cuts = np.flatnonzero(np.diff(ranges)) + 1
        for group in np.split(holes, cuts):
            if done >= n:
                break
            r = int(group[0]) // self.hp
            if self._empty_range(r):
                self.region.write(group[:1])
                lo = r * self.hp
                if self.region.resident(lo, self.hp) == self.hp:
                    self.pages.add(np.arange(lo, lo + self.hp))
                    self.thp_faults += 1
                    self.written += 1
                    done += self.hp
                    continue
                self.thp_fallbacks += 1
            take = group[:n - done]
            self.region.write(take)
            self.pages.add(take)
            self.written += len(take)
            done += len(take)
        return done

    def grow(self, n: int) -> None:
        """The model's ``_grow``: a THP fault's overdraw is paid from the next ticks'."""
        paid = min(n, self._grow_debt)
        self._grow_debt -= paid
        n -= paid
        if n > 0:
            self._grow_debt += max(0, self.fault(n) - n)

    # frees

    def free(self, n: int) -> int:
        """Free ``n`` resident pages in the release order: random pages one at a time,
        or the lowest addresses first in runs. Returns the pages freed."""
        if n <= 0:
            return 0
        if self.p.get("release") == "address":
            vpages = self.pages.lowest(n, resident=True)
            for first, count in runs_of(vpages):
                self.region.dontneed(first, count)
        else:
            vpages = self.pages.random(self.rng, n)
            for v in vpages.tolist():
                self.region.dontneed(v, 1)
        self.pages.remove(vpages)
        self.freed += len(vpages)
        return len(vpages)

    def churn(self, n: int, target: int) -> None:
        paid = min(n, self._churn_debt)
        self._churn_debt -= paid
        n -= paid
        freed = self.free(n)
        self._churn_debt += max(0, freed - n)
        self.fault(min(freed, target - len(self.pages)))

    # the process

    def _sample_smaps(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._smaps_at < SMAPS_EVERY_S:
            return
        self._smaps_at = now
        found = self.region.smaps()
        rss, huge = found["Rss"], found["AnonHugePages"]
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.peak_huge_kib = max(self.peak_huge_kib, huge)
        self.ctx.publish("anon_pages_order0", (rss - huge) * 1024 // PAGE_SIZE)
        self.ctx.publish("anon_pages_huge", huge * 1024 // PAGE_SIZE)

    def run(self) -> None:
        p = self.p
        target = self.vma_pages
        until = p.get("fill_until_available")
        until = None if until is None else until // PAGE_SIZE
        carry, last = 0.0, self.start
        shrunk = False

        def quota(rate_bytes: float) -> int:
            """The model's ``_quota``: the pages the tick's rate adds to one carry (at
            most BATCH_BYTES a tick: the rest stays in the carry)."""
            nonlocal carry
            carry += rate_bytes * (now - last) / PAGE_SIZE
            n = min(int(carry), BATCH_BYTES // PAGE_SIZE)
            carry -= n
            return n

        for now in self.ticks():
            if p.get("shrink_at") is not None and not shrunk and now >= p["shrink_at"]:
                self.free(len(self.pages) - p["shrink_to"] // PAGE_SIZE)
                target = p["shrink_to"] // PAGE_SIZE
                shrunk, until = True, None
            resident = len(self.pages)
            if until is not None and resident < target:
                room = mem_available_pages() - until
                if room <= 0:  # filled: what it holds is the size it keeps
                    target, until = resident, None
                else:
                    self.grow(min(quota(p["grow_rate"]), target - resident, room))
            elif resident < target:
                self.grow(min(quota(p["grow_rate"]), target - resident))
            elif p["churn_rate"]:
                self.churn(quota(p["churn_rate"]), target)
            last = now
            self.ctx.publish("resident_pages", len(self.pages))
            self._sample_smaps()
        if p.get("free_at_stop", True):
            self.free(len(self.pages))
            self.ctx.publish("resident_pages", len(self.pages))
            self._sample_smaps(force=True)

    def hold(self) -> None:
        while True:
            self._sample_smaps()
            self.ctx.sleep_until(self.ctx.now() + 0.25)

    def release(self) -> None:
        if hasattr(self, "region"):
            if not self.region.closed:
                self.end_smaps = self.region.smaps()
            self.mappings_left = self.region.close()

    def report(self) -> dict[str, Any]:
        resident = len(self.pages) if hasattr(self, "pages") else 0
        rss = self.end_smaps.get("Rss", 0)
        huge = self.end_smaps.get("AnonHugePages", 0)
        return {
            "resident_pages": resident, "allocated": self.written, "freed": self.freed,
            "resident_by_order": {"0": (rss - huge) * 1024 // PAGE_SIZE,
                                  str(int(math.log2(self.hp))): huge * 1024 // PAGE_SIZE},
            "thp_fault_alloc": self.thp_faults, "thp_fault_fallback": self.thp_fallbacks,
            "peak_rss_kib": self.peak_rss_kib, "peak_anon_huge_kib": self.peak_huge_kib,
            "mappings_left": self.mappings_left,
            "headline": f"{size_text(self.peak_rss_kib * 1024)} resident at most "
                        f"({size_text(rss * 1024)} at the end), {self.thp_faults} THP faults",
        }


class RealPageCache(RealWorkload):
    """``page_cache``: see the module docstring."""

    kind = "page_cache"
    STATS = ("bytes_read", "reads")

    def prepare(self) -> dict[str, Any]:
        p = self.p
        self.dir = Path(self.spec.directory)
        self.dir.mkdir()
        size, chunk = p["file_size"], 1 << 20
        data = os.urandom(min(chunk, size))
        started = time.monotonic()
        self.files: list[Path] = []
        self._reread_fds: dict[int, int] = {}
        for i in range(self.spec.pool_files):
            self.ctx.check()
            path = self.dir / f"f{i:05d}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                left = size
                while left > 0:
                    left -= os.write(fd, data[:min(left, len(data))])
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            self.files.append(path)
        self.pool_cached = sum(self._cached(i) for i in range(len(self.files)))
        self.reads = self.read_bytes = self.hits = self.skipped = self.files_read = 0
        self.fd = -1
        self.file = -1
        self.pos = 0
        self.read_files: list[int] = []  # files read at least once, for rereads
        self.buffer = bytearray(p["read_size"])
        self.ended_at: float | None = None
        return {"pool_files": len(self.files), "pool_bytes": size * len(self.files),
                "setup_s": time.monotonic() - started,
                "pool_cached_pages_at_start": self.pool_cached}

    def _reread_fd(self, i: int) -> int:
        fd = self._reread_fds.get(i)
        if fd is None:
            fd = self._reread_fds[i] = os.open(self.files[i], os.O_RDONLY)
        return fd

    def _cached(self, i: int, offset: int = 0, length: int = 0) -> int:
        return self.libc.cached_pages(self._reread_fd(i), offset, length)

    def _open(self, i: int) -> None:
        self.fd = os.open(self.files[i], os.O_RDONLY)
        advice = self.p.get("fadvise", "normal")
        if advice != "normal":
            os.posix_fadvise(self.fd, 0, 0, {"sequential": os.POSIX_FADV_SEQUENTIAL,
                                             "random": os.POSIX_FADV_RANDOM}[advice])
        self.file = i
        self.pos = 0
        self.files_read += 1
        if i not in self.read_files:
            self.read_files.append(i)

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def _reread(self) -> bool:
        """A page of a file read before: read it when cached (marks it accessed). False
        when no file read before holds page cache."""
        candidates = self.read_files
        pages = -(-self.p["file_size"] // PAGE_SIZE)
        while candidates:
            k = int(self.rng.integers(len(candidates)))
            i = candidates[k]
            offset = int(self.rng.integers(pages)) * PAGE_SIZE
            if self._cached(i, offset, PAGE_SIZE):
                os.pread(self._reread_fd(i), PAGE_SIZE, offset)
                return True
            if self._cached(i) == 0 and i != self.file:
                candidates[k] = candidates[-1]
                candidates.pop()
                continue
            return True
        return False

    def _read_one(self) -> None:
        p = self.p
        if self.fd < 0:
            self._open(0 if p["pattern"] == "random" else (self.file + 1) % len(self.files))
        if p["pattern"] == "random":
            slots = max(1, p["file_size"] // p["read_size"])
            pos = int(self.rng.integers(slots)) * p["read_size"]
        else:
            pos = self.pos
        got = os.preadv(self.fd, [self.buffer], pos)
        self.read_bytes += got
        self.pos = pos + p["read_size"]
        if p["pattern"] == "sequential" and self.pos >= p["file_size"]:
            self._close()  # EOF: the next read opens the next file of the pool

    def run(self) -> None:
        p = self.p
        pace = Pace(p["rate"] / p["read_size"], self.paced_from(),
                    BATCH_BYTES // p["read_size"])
        limit = None if p.get("limit") is None else p["limit"] // PAGE_SIZE
        for now in self.ticks():
            n = pace.due(now)
            over = (limit is not None and n
                    and sum(self._cached(i) for i in self.read_files) >= limit)
            for _ in range(n):
                self.reads += 1
                if p["reread"] and self.read_files and self.rng.random() < p["reread"] \
                        and self._reread():
                    self.hits += 1
                    continue
                if over:
                    self.skipped += 1
                    continue
                self._read_one()
            self.ctx.publish("bytes_read", self.read_bytes)
            self.ctx.publish("reads", self.reads)
            self.ended_at = self.ctx.now()

    def release(self) -> None:
        self._close()
        for fd in getattr(self, "_reread_fds", {}).values():
            os.close(fd)
        self._reread_fds = {}

    def report(self) -> dict[str, Any]:
        p = self.p
        spent = (self.ended_at or 0.0) - self.start
        rate = self.read_bytes / spent if spent > 0 else math.nan
        return {"reads": self.reads, "read_bytes": self.read_bytes, "hits": self.hits,
                "skipped_at_limit": self.skipped, "files_read": self.files_read,
                "pool_files": len(self.files), "rate_achieved": rate,
                "rate_requested": p["rate"] * (1 - p["reread"]),
                "headline": f"{size_text(self.read_bytes)} read at {size_text(rate)}/s "
                            f"(asked {size_text(p['rate'] * (1 - p['reread']))}/s beside "
                            f"{self.hits} rereads), {self.files_read} files opened"}


class RealFsChurn(RealWorkload):
    """``fs_churn``: see the module docstring."""

    kind = "fs_churn"
    STATS = ("created", "deleted")

    def prepare(self) -> dict[str, Any]:
        p = self.p
        self.dir = Path(self.spec.directory)
        self.dir.mkdir()
        self.sizes = self.rng.integers(p["min_bytes"], p["max_bytes"] + 1, p["files"])
        self.opened = self.rng.random(p["files"]) < p["open_share"]
        self.payload = b"x" * max(1, p["max_bytes"])
        self.paths: list[str] = []
        self.fds: list[int] = []
        self.dirs = self.created = self.deleted = 0
        self.times: dict[str, float] = {}
        need = int(self.opened.sum()) + 64
        soft, hard = _nofile()
        if need > soft:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        return {}

    def _create(self, j: int) -> None:
        p = self.p
        where = self.dir
        if p["dir_size"]:
            where = self.dir / f"d{j // p['dir_size']}"
            if j % p["dir_size"] == 0:
                where.mkdir()
                self.dirs += 1
        path = str(where / f"f{j}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            size = int(self.sizes[j])
            step = p.get("write_size") or max(size, 1)
            done = 0
            view = memoryview(self.payload)
            while done < size:
                done += os.write(fd, view[:min(step, size - done)])
        finally:
            if self.opened[j]:
                self.fds.append(fd)
            else:
                os.close(fd)
        self.paths.append(path)
        self.created += 1

    def run(self) -> None:
        p = self.p
        pace = Pace(p["create_rate"], self.paced_from(), BATCH_FILES)
        for now in self.ticks(until_inactive=False):  # the model's fs_churn ignores stop
            for _ in range(min(pace.due(now), p["files"] - self.created)):
                self._create(self.created)
            self.ctx.publish("created", self.created)
            self.ended_at = self.ctx.now()
            if self.created >= p["files"]:
                break
        self.times["created_s"] = self.ctx.now()
        self.ctx.sleep_until(self.ctx.now() + p["delete_after"])
        doomed = self.rng.permutation(len(self.paths))[:round(len(self.paths) * (1 - p["keep"]))]
        delete_from = self.ctx.now()
        self.times["delete_start_s"] = delete_from
        self.start = delete_from
        pace.restart(p["delete_rate"], delete_from)
        k = 0
        for now in self.ticks(until_inactive=False):
            n = min(pace.due(now), len(doomed) - k)
            for idx in doomed[k:k + n].tolist():
                os.unlink(self.paths[idx])
                self.deleted += 1
            k += n
            self.ctx.publish("deleted", self.deleted)
            self.ended_at = self.ctx.now()
            if k >= len(doomed):
                break
        self.times["delete_end_s"] = self.ctx.now()

    def release(self) -> None:
        for fd in getattr(self, "fds", []):
            os.close(fd)
        self.fds = []

    def report(self) -> dict[str, Any]:
        p = self.p
        t = self.times
        ended = getattr(self, "ended_at", math.nan)  # when the run stopped it, if it did
        created_in = t.get("created_s", ended) - float(p.get("start") or 0.0)
        deleted_in = t.get("delete_end_s", ended) - t.get("delete_start_s", math.nan)
        create_rate = self.created / created_in if created_in > 0 else math.nan
        delete_rate = self.deleted / deleted_in if deleted_in > 0 else math.nan

        def done(count: int, what: str, rate: float, asked: float) -> str:
            at = f" at {rate:,.0f}/s" if rate == rate else ""
            return f"{count} {what}{at} (asked {asked:,.0f}/s)"

        return {"created": self.created, "deleted": self.deleted, "dirs": self.dirs,
                "live_files": self.created - self.deleted, **t,
                "create_rate_achieved": create_rate, "delete_rate_achieved": delete_rate,
                "headline": f"{done(self.created, 'files created', create_rate, p['create_rate'])}"
                            f", {done(self.deleted, 'deleted', delete_rate, p['delete_rate'])}"}


class RealThpProbe(RealWorkload):
    """``thp_probe``: see the module docstring."""

    kind = "thp_probe"
    STATS = ("attempts", "successes", "recent_successes", "recent_attempts")

    def prepare(self) -> dict[str, Any]:
        self.attempts = self.successes = 0
        self.measured = self.measured_ok = 0
        self.recent: list[int] = []
        self.held: list[tuple[float, int]] = []  # (expires at, address)
        self.latency_us: list[float] = []
        return {"advice": self.spec.advice}

    def _unmap(self, addr: int) -> None:
        self.libc.munmap(addr, self.spec.hpage_size)

    def _attempt(self, now: float) -> bool:
        size = self.spec.hpage_size
        before = anon_huge_kib()
        region = Region(self.libc, size, size, self.spec.advice)
        addr = region.base
        region.view = None  # written through ctypes; the mapping stays until unmapped
        started = time.perf_counter()
        ctypes.memset(addr, 1, 1)
        self.latency_us.append((time.perf_counter() - started) * 1e6)
        ok = anon_huge_kib() - before >= size // 1024
        if ok:
            self.held.append((now + self.p["hold"], addr))
        else:
            self._unmap(addr)
        return ok

    def run(self) -> None:
        p = self.p
        k = 0
        while True:
            self.ctx.sleep_until(self.start + k * p["interval"])
            now = self.ctx.now()
            if not self.active():  # at stop the model frees what it holds
                for _, addr in self.held:
                    self._unmap(addr)
                self.held = []
                return
            for expires, addr in [h for h in self.held if h[0] <= now]:
                self.held.remove((expires, addr))
                self._unmap(addr)
            ok = self._attempt(now)
            self.attempts += 1
            self.successes += ok
            if now >= self.spec.measure_from:
                self.measured += 1
                self.measured_ok += ok
            self.recent.append(int(ok))
            if len(self.recent) > p["window"]:
                self.recent.pop(0)
            for name, value in (("attempts", self.attempts), ("successes", self.successes),
                                ("recent_successes", sum(self.recent)),
                                ("recent_attempts", len(self.recent))):
                self.ctx.publish(name, value)
            k = max(k + 1, int((self.ctx.now() - self.start) / p["interval"]) + 1)

    def release(self) -> None:
        for _, addr in getattr(self, "held", []):
            self._unmap(addr)
            self.mappings_left += [f"{e['start']:x}-{e['end']:x}"
                                   for e in smaps_of(addr, addr + self.spec.hpage_size)]
        self.held = []

    def report(self) -> dict[str, Any]:
        lat = sorted(getattr(self, "latency_us", []))
        rate = self.successes / self.attempts if self.attempts else math.nan
        return {"attempts": self.attempts, "successes": self.successes, "success_rate": rate,
                "measured_attempts": self.measured, "measured_successes": self.measured_ok,
                "fault_latency_us": {"median": lat[len(lat) // 2] if lat else math.nan,
                                     "max": lat[-1] if lat else math.nan},
                "mappings_left": self.mappings_left,
                "headline": f"{self.successes}/{self.attempts} huge page faults succeeded"}


class RealFragment(RealWorkload):
    """``fragment``: see the module docstring."""

    kind = "fragment"
    STATS = ("resident_pages",)

    def prepare(self) -> dict[str, Any]:
        spec = self.spec
        self.region = Region(self.libc, spec.vma_bytes, spec.hpage_size, "nohugepage")
        self.pages = spec.vma_bytes // PAGE_SIZE
        self.filled = self.freed = 0
        self.filled_at: float | None = None
        self.freed_at: float | None = None
        return {"vma_bytes": spec.vma_bytes}

    def _kept(self) -> tuple[int, int]:
        k = self.p["keep_one_in"]
        return k, 0 if self.p["keep"] == "first" else k - 1

    def _freeable_before(self, slot: int) -> int:
        """Slots below ``slot`` that are not kept."""
        k, kept = self._kept()
        return slot - max(0, slot - kept + k - 1) // k

    def _freeable_slot(self, t: int) -> int:
        """The slot of the ``t``-th slot that is not kept (from 0)."""
        k, kept = self._kept()
        group, r = divmod(t, k - 1)
        return group * k + r + (r >= kept)

    def _free_slots(self, first: int, last: int) -> None:
        """Free slots [first, last) but the kept one of each K, in address order."""
        k, kept = self._kept()
        slot = first
        while slot < last:
            group = slot - slot % k
            if slot - group == kept:
                slot += 1
                continue
            end = min(last, group + k if kept < slot - group else group + kept)
            self.region.dontneed(slot, end - slot)
            self.freed += end - slot
            slot = end

    def run(self) -> None:
        p = self.p
        until = p.get("fill_until_available")
        until = None if until is None else until // PAGE_SIZE
        pace = Pace(p["fill_rate"] / PAGE_SIZE, self.start, BATCH_BYTES // PAGE_SIZE)
        for now in self.ticks(until_inactive=False):  # the model's fragment ignores stop
            n = min(pace.due(now), self.pages - self.filled)
            if until is not None:
                room = mem_available_pages() - until
                if room <= 0:
                    break
                n = min(n, room)
            self.region.write_run(self.filled, n)
            self.filled += n
            self.ctx.publish("resident_pages", self.filled - self.freed)
            if self.filled >= self.pages:
                break
        self.filled_at = self.ctx.now()
        if p.get("free_at") is not None:
            self.ctx.sleep_until(p["free_at"])
        if p.get("free_rate") is None:
            self._free_slots(0, self.filled)
        elif p["keep_one_in"] > 1:  # free_rate bytes a second, in slot order
            pace.restart(p["free_rate"] / PAGE_SIZE, self.ctx.now())
            self.start = self.ctx.now()
            cursor, total = 0, self._freeable_before(self.filled)
            for now in self.ticks(until_inactive=False):
                target = min(self._freeable_before(cursor) + pace.due(now), total)
                if target > self._freeable_before(cursor):
                    end = self._freeable_slot(target - 1) + 1
                    self._free_slots(cursor, end)
                    cursor = end
                self.ctx.publish("resident_pages", self.filled - self.freed)
                if self._freeable_before(cursor) >= total:
                    break
        self.freed_at = self.ctx.now()
        self.ctx.publish("resident_pages", self.filled - self.freed)

    def release(self) -> None:
        if hasattr(self, "region"):
            self.mappings_left = self.region.close()

    def report(self) -> dict[str, Any]:
        return {"allocated": self.filled, "freed": self.freed, "filled_at_s": self.filled_at,
                "freed_at_s": self.freed_at, "mappings_left": self.mappings_left,
                "headline": f"{size_text(self.filled * PAGE_SIZE)} filled, "
                            f"{size_text(self.freed * PAGE_SIZE)} freed"}


class RealCompactMemory(RealWorkload):
    """``compact_memory``: see the module docstring."""

    kind = "compact_memory"
    SYSCTL = "/proc/sys/vm/compact_memory"

    def prepare(self) -> dict[str, Any]:
        self.runs: list[dict[str, Any]] = []
        return {}

    @staticmethod
    def _free_area(order: int) -> tuple[int, float]:
        from sim import metrics
        from sim.procfs import parse_buddyinfo

        zones = parse_buddyinfo(Path("/proc/buddyinfo").read_text(), "/proc/buddyinfo")
        nr_free = [sum(col) for col in zip(*(z.nr_free for z in zones), strict=True)]
        return metrics.avail(nr_free, order), metrics.unusable_index(nr_free, order)

    def run(self) -> None:
        order = int(math.log2(self.spec.hpage_size // PAGE_SIZE))
        for when in sorted(self.p["at"]):
            self.ctx.sleep_until(when)
            run: dict[str, Any] = {"at": self.ctx.now()}
            run[f"avail{order}_before"], run[f"unusable_index{order}_before"] = \
                self._free_area(order)
            started = time.monotonic()
            with open(self.SYSCTL, "w") as f:
                f.write("1")
            run["time_s"] = time.monotonic() - started
            run[f"avail{order}_after"], run[f"unusable_index{order}_after"] = \
                self._free_area(order)
            self.runs.append(run)

    def report(self) -> dict[str, Any]:
        order = int(math.log2(self.spec.hpage_size // PAGE_SIZE))
        done = ", ".join(f"at {r['at']:.1f} s avail[{order}] {r[f'avail{order}_before']} -> "
                         f"{r[f'avail{order}_after']} in {r['time_s'] * 1e3:.0f} ms"
                         for r in self.runs)
        return {"runs": self.runs, "headline": done or "did not run"}


COUNTERPARTS: dict[str, type[RealWorkload]] = {
    cls.kind: cls for cls in (RealAnon, RealPageCache, RealFsChurn, RealThpProbe,
                              RealFragment, RealCompactMemory)}


def _nofile() -> tuple[int, int]:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ------------------------------------------------------------------ the process


_terminated = False  # SIGTERM came (the run's stop, or its death: PR_SET_PDEATHSIG)


def parent_gone(parent: int) -> bool:
    """The run's process has died: this process was handed to another parent, or the
    run's is a zombie. PR_SET_PDEATHSIG's signal can come while ``getppid`` still names
    the dying parent (measured: in about one kill of three), so both are looked at."""
    if os.getppid() != parent:
        return True
    try:
        state = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _on_sigterm(signum, frame) -> None:
    """Only a flag: an exception raised from a signal handler could leave a lock the
    process shares with the others (the stop event's, the queue's) held for ever;
    ``Context.check`` raises Stopped at the next look, at most half a second later."""
    global _terminated
    _terminated = True


def worker_main(spec: WorkerSpec, queue, stats, go, t0, stop, parent: int,
                setup_deadline: float) -> None:
    """A counterpart's process: prepare, say ready, wait for go, run, hold until the
    run stops, release (unmap, close), report. Its files are the run's to delete, once
    every counterpart has exited; if the run's process is gone it deletes its own. It
    dies with its parent (PR_SET_PDEATHSIG: SIGTERM, which unwinds to the release),
    ignores the terminal's Ctrl-C (the parent stops it) and stops by itself past the
    run's deadline."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    libc = Libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    status = 0
    workload: RealWorkload | None = None
    names = COUNTERPARTS[spec.kind].STATS
    ctx = Context(t0=math.inf, stop=stop, deadline=setup_deadline, stats=stats,
                  offset=spec.index * STATS_PER_WORKER, names=names, parent=parent)
    info: dict[str, Any] = {}
    try:
        if os.getppid() != parent:
            raise Stopped
        if spec.cpu is not None:
            os.sched_setaffinity(0, {spec.cpu})
        workload = COUNTERPARTS[spec.kind](spec, ctx, libc)
        info = workload.prepare()
        queue.put(("ready", spec.index, info))
        while True:
            ctx.check()
            if go.wait(0.2):
                break
        ctx.t0 = t0.value
        ctx.deadline = ctx.t0 + spec.duration + 10.0
        workload.run()
        workload.hold()
    except Stopped:
        pass
    except BaseException as err:  # noqa: BLE001  (any failure is reported, then cleaned up)
        status = 1
        where = traceback.extract_tb(err.__traceback__)[-1]
        queue.put(("error", spec.index,
                   f"{type(err).__name__}: {err} (sim/real.py line {where.lineno})"))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the release is not cut short
        report: dict[str, Any] = {}
        try:
            if workload is not None:
                workload.release()
                report = workload.report()
        except Exception as err:  # noqa: BLE001
            status = 1
            report["release_error"] = f"{type(err).__name__}: {err}"
        gone = parent_gone(parent)
        if _terminated and not gone:
            # The death signal may run ahead of the parent's exit: look again, briefly.
            for _ in range(10):
                time.sleep(0.05)
                if parent_gone(parent):
                    gone = True
                    break
        if gone:  # the run is gone (killed): nobody else will clean up
            if spec.directory is not None:
                shutil.rmtree(spec.directory, ignore_errors=True)
            if spec.run_directory is not None:
                with contextlib.suppress(OSError):  # the last one out: only when empty
                    os.rmdir(spec.run_directory)
            # Nobody reads the queue now, and the others hold its pipe open: a report
            # could fill it and block the exit for ever.
            queue.cancel_join_thread()
            os._exit(status)
        report["pid"] = os.getpid()
        if info:
            report["setup"] = info
        queue.put(("report", spec.index, report))
        queue.close()
        queue.join_thread()
    os._exit(status)


__all__ = ["COUNTERPARTS", "WorkerSpec", "RealWorkload", "worker_main", "cachestat_works",
           "mem_available_pages", "PAGE_SIZE"]
