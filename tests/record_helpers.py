"""A stand-in live kernel made of real 6.18 files (tests/data), and a tiny simulated
experiment on two zones, for the tests of ``fragsim record`` and ``fragsim compare``: they do not
depend on root or on what this machine's memory does meanwhile."""

from __future__ import annotations

import shutil
from pathlib import Path

from sim.livekernel import LiveKernel

DATA = Path(__file__).resolve().parent / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"

# The /proc/vmstat counters the stand-in starts with (a few of a real 6.18's).
VMSTAT = {"nr_free_pages": 20000, "nr_inactive_file": 3000, "nr_active_file": 1000,
          "nr_file_pages": 4500, "allocstall_dma32": 0, "allocstall_normal": 2,
          "pgsteal_kswapd": 100, "pgsteal_direct": 5, "pgscan_kswapd": 150,
          "pgscan_direct": 7, "pgskip_dma": 0, "pgskip_dma32": 0, "pgskip_normal": 12,
          "pgskip_movable": 0,
          "compact_stall": 1, "compact_success": 1, "compact_fail": 0,
          "compact_migrate_scanned": 4000, "compact_free_scanned": 9000,
          "thp_collapse_alloc": 2, "thp_collapse_alloc_failed": 0,
          "compact_daemon_wake": 3, "pageoutrun": 4, "pgmigrate_success": 10,
          "slabs_scanned": 1000, "thp_fault_alloc": 50, "thp_fault_fallback": 10,
          "thp_fault_fallback_charge": 0, "drop_pagecache": 0}

TINY = """\
name: tiny
seed: 1
seeds: 1
duration: 2s
sample_every: 250ms
machine: {memory: 32MiB, cpus: 2, zones: [DMA, DMA32]}
workloads:
  - {kind: slab_churn, cache: dentry, rate: 20000, lifetime: {mean: 1s}}
  - {kind: thp_probe, interval: 50ms, hold: 100ms}
"""


def write_vmstat(proc: Path, counters: dict[str, int]) -> None:
    (proc / "vmstat").write_text("".join(f"{k} {v}\n" for k, v in counters.items()))


def standin_kernel(root: Path, root_only: bool = True) -> LiveKernel:
    """/proc and /sys/kernel/mm under ``root`` from the real capture's ``before.*``
    files (without pagetypeinfo and slabinfo unless ``root_only``)."""
    proc = root / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    names = ["buddyinfo", "zoneinfo", "meminfo"]
    if root_only:
        names += ["pagetypeinfo", "slabinfo"]
    for name in names:
        shutil.copy(DATA / f"before.{name}", proc / name)
    write_vmstat(proc, VMSTAT)
    (proc / "sys" / "vm" / "min_free_kbytes").write_text("67584\n")
    thp = root / "mm" / "transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "enabled").write_text("always [madvise] never\n")
    (thp / "hpage_pmd_size").write_text("2097152\n")
    return LiveKernel(proc=proc, sys_mm=root / "mm", debugfs=root / "debug")
