"""How much of this computer's memory a run will take, and a refusal before it starts.

fragsim keeps per-page state for the whole zone from the start (the buddy allocator's
links, state and owner: 11 B), the file LRU's arrays, the pageblock samples' numpy
copies and each page-holding workload's pfn index (anon, page_cache, thp_probe,
fragment: 4 B a page each, plus the pfns it holds). The model is

    bytes = FIXED_BYTES + pages x (PER_PAGE_BYTES + PER_PAGE_WORKLOAD_BYTES x W)
            + FILE_BYTES x files of fs_churn workloads

with W the page-holding workloads. The coefficients round up peak-RSS growth
(``resource.getrusage``) measured on this code, compiled build, between machines of
512 MiB and 2 GiB (and 1 and 4 GiB for the shipped configs), once memory had filled
(kswapd reclaiming): a fill config (anon 50 %, page_cache streaming, kernel_alloc,
thp_probe) grew by 74 B per page, page_cache alone by 40-66 B per page, a machine
just built (no page touched) by 20-24 B per page; configs/quickstart.yaml's 120 000
files took about 1 KiB each (dentry, inode, their slab slots and Python objects).
Slab objects of ``slab_churn`` are not counted: they are bounded by the workload's
rate and lifetimes, not by the machine.

``check_footprint`` refuses (FragsimError, exit 2) a run whose estimate exceeds
``MARGIN`` of what /proc/meminfo's MemAvailable (and a cgroup v2 memory.max) leave,
with the estimate in the message; ``FRAGSIM_SKIP_MEMORY_CHECK=1`` skips the check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sim.config import ExperimentConfig
from sim.errors import FragsimError
from sim.units import format_size

FIXED_BYTES = 160 << 20  # the interpreter, numpy, simpy, matplotlib for the plots
PER_PAGE_BYTES = 64
PER_PAGE_WORKLOAD_BYTES = 8  # a PageSet's pfn -> index map and its share of held pfns
FILE_BYTES = 1024
PAGE_HOLDING_KINDS = frozenset({"anon", "page_cache", "thp_probe", "fragment"})
MARGIN = 0.9
SKIP_ENV = "FRAGSIM_SKIP_MEMORY_CHECK"


def _workloads(config: ExperimentConfig) -> Iterable[dict]:
    """Every workload's kind and parameters, those nested in phases steps too."""
    stack = [{"kind": spec.kind, **(spec.model_extra or {})} for spec in config.workloads]
    while stack:
        params = stack.pop()
        yield params
        for step in params.get("steps") or ():
            stack.extend(step.get("workloads") or ())


def per_page_bytes(config: ExperimentConfig) -> int:
    """The bytes per simulated page of ``estimate_bytes`` for this config."""
    per_page = PER_PAGE_BYTES
    for params in _workloads(config):
        kind = params.get("kind")
        if kind in PAGE_HOLDING_KINDS:
            per_page += PER_PAGE_WORKLOAD_BYTES + (4 if kind == "fragment" else 0)
    return per_page


def estimate_bytes(config: ExperimentConfig) -> int:
    """Peak bytes one machine of ``config`` is expected to take (see the module doc)."""
    pages = config.machine.memory // config.machine.page_size
    files = sum(int(params.get("files") or 0) for params in _workloads(config)
                if params.get("kind") == "fs_churn")
    return FIXED_BYTES + pages * per_page_bytes(config) + files * FILE_BYTES


def available_bytes(meminfo: str | Path = "/proc/meminfo",
                    cgroup: str | Path = "/sys/fs/cgroup") -> int | None:
    """What this computer can give a new process: MemAvailable, capped by the cgroup
    v2 limit less its usage; None when /proc/meminfo cannot be read (not Linux)."""
    try:
        text = Path(meminfo).read_text()
    except OSError:
        return None
    available = None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) * 1024
    if available is None:
        return None
    try:
        limit = Path(cgroup, "memory.max").read_text().strip()
        usage = int(Path(cgroup, "memory.current").read_text().strip())
    except (OSError, ValueError):
        return available
    if limit.isdigit():
        available = min(available, max(0, int(limit) - usage))
    return available


def check_footprint(configs: Iterable[ExperimentConfig], source: str,
                    available: int | None = None) -> None:
    """Refuse, before anything runs, a machine this computer cannot hold.

    Variants run one after another, so the largest one counts."""
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        return
    if available is None:
        available = available_bytes()
    if available is None:
        return
    budget = int(available * MARGIN)
    for config in configs:
        need = estimate_bytes(config)
        if need > budget:
            memory = config.machine.memory
            pages = memory // config.machine.page_size
            raise FragsimError(
                f"{source}: machine.memory: expected a machine this computer can "
                f"simulate (at most {MARGIN:.0%} of the {_gib(available)} available), got "
                f"{format_size(memory)}, estimated to need {_gib(need)} "
                f"({per_page_bytes(config)} B per page x {pages} pages + fixed); "
                f"{SKIP_ENV}=1 runs it anyway")


def _gib(nbytes: int) -> str:
    return f"{nbytes / (1 << 30):.1f} GiB"
