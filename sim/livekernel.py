"""Reading the live kernel: ``fragsim snapshot DIR`` copies what the running Linux says
about its memory into a directory that fragsim can start a machine from.

What is read, and from where (the files a 6.18 kernel has; a file it lacks is skipped):

- ``/proc``: buddyinfo, pagetypeinfo and slabinfo (both root-only, mode 0400), zoneinfo,
  meminfo, vmstat;
- ``/proc/sys/vm``: the sysctls that set watermarks, reserves and compaction
  (``min_free_kbytes``, ``watermark_scale_factor``, ``watermark_boost_factor``,
  ``lowmem_reserve_ratio``, ``percpu_pagelist_high_fraction``, ``extfrag_threshold``,
  ``compaction_proactiveness``, ``vfs_cache_pressure``, ``swappiness``);
- ``/sys/kernel/mm/transparent_hugepage``: ``enabled``, ``defrag``, ``shmem_enabled``,
  ``khugepaged/{pages_to_scan,scan_sleep_millisecs,alloc_sleep_millisecs,max_ptes_none,
  defrag}``;
- ``/sys/block/DEV/queue/{read_ahead_kb,max_sectors_kb}`` of every block device that
  has them (they set how large page-cache folios grow: sim/readahead.py);
- debugfs ``extfrag/{unusable_index,extfrag_index}`` (mm/vmstat.c), as root: where
  debugfs is already mounted, or mounted for the read on a temporary directory and
  unmounted after (``mount -t debugfs none DIR``);
- ``/sys/kernel/mm/damon/admin/kdamonds``: every DAMON scheme of a kdamond that is on
  (mm/damon/sysfs.c, sysfs-schemes.c), written to ``damon.json``: its operations set,
  sampling and aggregation intervals, monitored regions, action, access pattern, quotas,
  filters and its counters (``sz_applied``: bytes the action was applied to). A scheme
  whose action is ``pageout`` reclaims memory outside kswapd and direct reclaim
  (``reclaim_pages``), counted in no pgsteal counter; fragsim does not model DAMON, so
  a recording says when one ran. As root the counters are refreshed first (``echo
  update_schemes_stats > kdamonds/N/state``); otherwise they are as last refreshed.

Each file is copied byte for byte, under a name that says where it came from
(``buddyinfo``, ``sys/vm/min_free_kbytes``, ``thp/enabled``, ``block/vda/read_ahead_kb``,
``extfrag/unusable_index``).
``snapshot.json`` records the kernel release, the time, the CPU count, the page size,
what was taken and what was skipped and why (``permission denied: root only``, ``not
present``). The copies are taken one after another, not atomically: a busy machine's
files can disagree by the pages that moved between two reads.

The directory is written whole or not at all (a temporary sibling renamed into place)
and never over anything: DIR must not exist, or be empty.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import FragsimError

PROC_FILES = ("buddyinfo", "pagetypeinfo", "zoneinfo", "slabinfo", "meminfo", "vmstat")
VM_SYSCTLS = ("min_free_kbytes", "watermark_scale_factor", "watermark_boost_factor",
              "lowmem_reserve_ratio", "percpu_pagelist_high_fraction", "extfrag_threshold",
              "compaction_proactiveness", "vfs_cache_pressure", "swappiness")
THP_FILES = ("enabled", "defrag", "shmem_enabled", "khugepaged/pages_to_scan",
             "khugepaged/scan_sleep_millisecs", "khugepaged/alloc_sleep_millisecs",
             "khugepaged/max_ptes_none", "khugepaged/defrag")
EXTFRAG_FILES = ("unusable_index", "extfrag_index")
DAMON_KDAMONDS = "damon/admin/kdamonds"  # under /sys/kernel/mm
DAMON_STATS = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "sz_ops_filter_passed",
               "qt_exceeds")
DAMON_JSON = "damon.json"
MANIFEST = "snapshot.json"


@dataclass
class LiveKernel:
    """Where the live kernel's files are: the real roots, or a test's stand-ins."""

    proc: Path = Path("/proc")
    sys_mm: Path = Path("/sys/kernel/mm")
    debugfs: Path | None = None  # None: find or mount it (as root)
    sys_block: Path = Path("/sys/block")  # the block devices' queue settings
    mount_debugfs: bool = True


@dataclass
class SnapshotReport:
    taken: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _copy(src: Path, dst: Path, name: str, report: SnapshotReport) -> None:
    try:
        data = src.read_bytes()
    except PermissionError:
        report.skipped[name] = "permission denied: root only"
        return
    except FileNotFoundError:
        report.skipped[name] = "not present on this kernel"
        return
    except OSError as err:
        report.skipped[name] = err.strerror or str(err)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    report.taken.append(name)


def _mounted_debugfs(proc: Path) -> Path | None:
    """Where debugfs is mounted now, from /proc/self/mounts."""
    try:
        for line in (proc / "self" / "mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "debugfs":
                return Path(fields[1])
    except OSError:
        return None
    return None


@contextmanager
def _debugfs(kernel: LiveKernel, report: SnapshotReport) -> Iterator[Path | None]:
    """The debugfs root: given, already mounted, or mounted here for the read (root)."""
    if kernel.debugfs is not None:
        yield kernel.debugfs
        return
    where = _mounted_debugfs(kernel.proc)
    if where is not None:
        yield where
        return
    if not kernel.mount_debugfs or os.geteuid() != 0:
        report.skipped["extfrag"] = "debugfs is not mounted (as root, fragsim mounts it)"
        yield None
        return
    mnt = Path(tempfile.mkdtemp(prefix="fragsim-debugfs-"))
    try:
        done = subprocess.run(["mount", "-t", "debugfs", "none", str(mnt)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            report.skipped["extfrag"] = f"mount -t debugfs failed: {done.stderr.strip()}"
            yield None
            return
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    finally:
        with suppress(OSError):
            mnt.rmdir()


BLOCK_QUEUE_FILES = ("read_ahead_kb", "max_sectors_kb")


def block_queues(kernel: LiveKernel) -> list[Path]:
    """The queue directories of the block devices that have readahead settings."""
    try:
        devices = sorted(kernel.sys_block.iterdir())
    except OSError:
        return []
    return [dev / "queue" for dev in devices if (dev / "queue" / "read_ahead_kb").is_file()]


def _numbered(path: Path) -> list[Path]:
    """DAMON's numbered sysfs directories (0, 1, ...) under ``path``, in order."""
    try:
        return sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    except OSError:
        return []


def read_stripped(path: Path) -> str | None:
    """A kernel file's text, stripped; None when it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(path: Path) -> int | None:
    try:
        return int(read_stripped(path) or "")
    except ValueError:
        return None


def damon_schemes(kernel: LiveKernel) -> list[dict]:
    """Every DAMON scheme of a kdamond that is on, with its settings and counters (see
    the module docstring); [] when there is none or DAMON's sysfs is absent. The
    counters are refreshed first by writing ``update_schemes_stats`` to each kdamond's
    ``state`` (root; ``stats_refreshed`` says whether it took)."""
    schemes = []
    for kdamond in _numbered(kernel.sys_mm / DAMON_KDAMONDS):
        if read_stripped(kdamond / "state") != "on":
            continue
        refreshed = False
        try:
            (kdamond / "state").write_text("update_schemes_stats")
            refreshed = True
        except OSError:
            pass
        for context in _numbered(kdamond / "contexts"):
            intervals = context / "monitoring_attrs" / "intervals"
            regions = [[_int(r / "start"), _int(r / "end")]
                       for target in _numbered(context / "targets")
                       for r in _numbered(target / "regions")]
            for scheme in _numbered(context / "schemes"):
                pattern = scheme / "access_pattern"
                filters = [{"kind": kind, **{name: read_stripped(f / name)
                                             for name in ("type", "matching", "allow")}}
                           for kind in ("core_filters", "ops_filters", "filters")
                           for f in _numbered(scheme / kind)]
                schemes.append({
                    "kdamond": int(kdamond.name), "context": int(context.name),
                    "scheme": int(scheme.name),
                    "operations": read_stripped(context / "operations"),
                    "intervals_us": {name: _int(intervals / name)
                                     for name in ("sample_us", "aggr_us", "update_us")},
                    "regions": regions,
                    "action": read_stripped(scheme / "action"),
                    "access_pattern": {f"{what}_{end}": _int(pattern / what / end)
                                       for what in ("sz", "nr_accesses", "age")
                                       for end in ("min", "max")},
                    "quotas": {name: _int(scheme / "quotas" / name)
                               for name in ("bytes", "ms", "reset_interval_ms")},
                    "filters": filters,
                    "stats": {name: _int(scheme / "stats" / name) for name in DAMON_STATS},
                    "stats_refreshed": refreshed,
                })
    return schemes


def take_snapshot(out: str | Path, kernel: LiveKernel | None = None) -> SnapshotReport:
    """Copy the live kernel's memory files into ``out`` (see the module docstring)."""
    kernel = kernel or LiveKernel()
    out = Path(out)
    if out.is_symlink() or out.is_file():
        raise FragsimError(f"{out}: exists and is not a directory; fragsim snapshot writes "
                           "a new directory and never over a file")
    if out.is_dir() and any(out.iterdir()):
        raise FragsimError(f"{out}: is not empty; give a new directory (fragsim snapshot "
                           "never writes over anything)")
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    report = SnapshotReport()
    try:
        for name in PROC_FILES:
            _copy(kernel.proc / name, tmp / name, name, report)
        for name in VM_SYSCTLS:
            _copy(kernel.proc / "sys" / "vm" / name, tmp / "sys" / "vm" / name,
                  f"sys/vm/{name}", report)
        for name in THP_FILES:
            _copy(kernel.sys_mm / "transparent_hugepage" / name, tmp / "thp" / name,
                  f"thp/{name}", report)
        for queue in block_queues(kernel):
            for name in BLOCK_QUEUE_FILES:
                dev = queue.parent.name
                _copy(queue / name, tmp / "block" / dev / name, f"block/{dev}/{name}",
                      report)
        with _debugfs(kernel, report) as debugfs:
            if debugfs is not None:
                for name in EXTFRAG_FILES:
                    _copy(debugfs / "extfrag" / name, tmp / "extfrag" / name,
                          f"extfrag/{name}", report)
        damon = damon_schemes(kernel)
        if damon:
            (tmp / DAMON_JSON).write_text(json.dumps(damon, indent=1) + "\n")
            report.taken.append(DAMON_JSON)
        manifest = {
            "kind": "fragsim snapshot",
            "kernel_release": platform.release(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "page_size": os.sysconf("SC_PAGE_SIZE"),
            "root": os.geteuid() == 0,
            "taken": report.taken,
            "skipped": report.skipped,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        tmp.chmod(0o755)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
