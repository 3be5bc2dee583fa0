"""Bare allocator benchmark: fragsim's Zone against a plain Python buddy loop.

Both run the same random operation sequence in the same process, so the ratio of
their alloc+free rates cancels machine noise (DESIGN.md, "Performance targets").

The sequence: fill a 16 GiB zone (4 Mi pages) to about 50 % with blocks of order 0
(90 %) or 1-3 (10 %), then a mix of allocations and frees of random live blocks that
keeps the occupancy near 50 %. fragsim runs with migratetypes (80 % movable, 15 %
unmovable, 5 % reclaimable), per-CPU lists on two CPUs and watermark checks, as a
kernel would; the reference has one set of free pfns per order and nothing else.

The same sequence also runs through bench/cbuddy.c, a minimal C buddy allocator (one
LIFO free list per order over a page array), built with the system compiler into a
temporary directory (skipped, with a one-line message, when there is none): issue 20
measures fragsim against it. For that, the zone is also driven by a compiled loop
(``sim.buddy.apply_ops``, ``run_fragsim_compiled``), as the C loop drives its own
allocator and a run's compiled workloads drive the zone: from the interpreter's loop,
the loop costs more than the zone's own work. The two loops must leave the zone alike.
The C loop's free blocks per order at the end must equal those of ``LifoBuddy``, the
same allocator in Python (the reference's sets pop in hash-table order, so only its
total of free pages can be compared: see ``c_check``).

Times are CPU time (``time.process_time``, the C loop's CLOCK_PROCESS_CPUTIME_ID):
the machines are shared.

    python bench/bench_buddy.py            # 5 repeats, 2 M operations each
    python bench/bench_buddy.py --quick    # a smaller zone and fewer operations
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from librt.vecs import vec  # noqa: E402
from mypy_extensions import i32, i64  # noqa: E402

from sim.buddy import Zone, apply_ops  # noqa: E402
from sim.migratetype import (  # noqa: E402
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
)

GiB = 1 << 30
ALLOC, FREE = 0, 1


def initial_blocks(nr_pages: int, max_order: int = 10):
    """The free blocks (pfn, order) of an empty zone, lowest pfn first: MAX_ORDER
    blocks, then smaller ones at the end."""
    pfn = 0
    while pfn < nr_pages:
        order = max_order
        while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > nr_pages):
            order -= 1
        yield pfn, order
        pfn += 1 << order


class ReferenceBuddy:
    """The plainest Python buddy allocator: a set of free pfns per order."""

    def __init__(self, nr_pages: int, max_order: int = 10) -> None:
        self.max_order = max_order
        self.free_sets: list[set[int]] = [set() for _ in range(max_order + 1)]
        for pfn, order in initial_blocks(nr_pages, max_order):
            self.free_sets[order].add(pfn)

    def alloc(self, order: int) -> int | None:
        free_sets = self.free_sets
        for current in range(order, self.max_order + 1):
            if free_sets[current]:
                pfn = free_sets[current].pop()
                while current > order:
                    current -= 1
                    free_sets[current].add(pfn + (1 << current))
                return pfn
        return None

    def free(self, pfn: int, order: int) -> None:
        free_sets = self.free_sets
        while order < self.max_order:
            buddy = pfn ^ (1 << order)
            s = free_sets[order]
            if buddy not in s:
                break
            s.remove(buddy)
            pfn &= buddy
            order += 1
        free_sets[order].add(pfn)


class LifoBuddy:
    """bench/cbuddy.c in Python, for its correctness check: one LIFO free list per
    order (a dict keeps insertion order, ``popitem`` takes the newest, ``del`` unlinks
    from the middle as the C loop's doubly linked list does). An allocation that
    finds no block gives None, and freeing None does nothing, as in the C loop."""

    def __init__(self, nr_pages: int, max_order: int = 10) -> None:
        self.nr_pages = nr_pages
        self.max_order = max_order
        self.free_lists: list[dict[int, None]] = [{} for _ in range(max_order + 1)]
        for pfn, order in initial_blocks(nr_pages, max_order):
            self.free_lists[order][pfn] = None

    def alloc(self, order: int) -> int | None:
        free_lists = self.free_lists
        for current in range(order, self.max_order + 1):
            if free_lists[current]:
                pfn = free_lists[current].popitem()[0]
                while current > order:
                    current -= 1
                    free_lists[current][pfn + (1 << current)] = None
                return pfn
        return None

    def free(self, pfn: int | None, order: int) -> None:
        if pfn is None:
            return
        free_lists = self.free_lists
        while order < self.max_order:
            buddy = pfn ^ (1 << order)
            if buddy >= self.nr_pages or buddy not in free_lists[order]:
                break
            del free_lists[order][buddy]
            pfn &= buddy
            order += 1
        free_lists[order][pfn] = None

    def checksum(self) -> int:
        """cbuddy.c's: FNV-1a over (order + 1, pfn) of each free block, order by order,
        each list from its head (the newest block) on."""
        value = 1469598103934665603
        for order, blocks in enumerate(self.free_lists):
            for pfn in reversed(blocks):
                value = ((value ^ (order + 1)) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
                value = ((value ^ pfn) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        return value


def make_ops(nr_pages: int, nr_ops: int, seed: int = 1):
    """The shared operation sequence: (kind, order, migratetype, cpu, slot) arrays."""
    rng = random.Random(seed)
    kinds, orders, mts, cpus, slots = (array("b"), array("b"), array("b"), array("b"),
                                       array("i"))
    live: list[int] = []
    slot_order: list[int] = []
    used = 0

    def new_alloc() -> None:
        nonlocal used
        order = 0 if rng.random() < 0.9 else rng.randint(1, 3)
        r = rng.random()
        mt = MIGRATE_MOVABLE if r < 0.8 else MIGRATE_UNMOVABLE if r < 0.95 else (
            MIGRATE_RECLAIMABLE)
        slot = len(slot_order)
        slot_order.append(order)
        live.append(slot)
        used += 1 << order
        kinds.append(ALLOC)
        orders.append(order)
        mts.append(mt)
        cpus.append(rng.randrange(2))
        slots.append(slot)

    while used < nr_pages // 2:
        new_alloc()
    nr_prefill = len(kinds)
    for _ in range(nr_ops):
        if rng.random() < 0.5 and live:
            i = rng.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            slot = live.pop()
            used -= 1 << slot_order[slot]
            kinds.append(FREE)
            orders.append(slot_order[slot])
            mts.append(0)
            cpus.append(rng.randrange(2))
            slots.append(slot)
        else:
            new_alloc()
    return (kinds, orders, mts, cpus, slots), nr_prefill, len(slot_order)


def run_reference(nr_pages, ops, nr_prefill, nr_slots) -> float:
    ref = ReferenceBuddy(nr_pages)
    pfns = [0] * nr_slots
    kinds, orders, _mts, _cpus, slots = ops
    alloc, free = ref.alloc, ref.free
    for i in range(nr_prefill):
        pfns[slots[i]] = alloc(orders[i])
    t0 = time.process_time()
    for kind, order, slot in zip(kinds[nr_prefill:], orders[nr_prefill:], slots[nr_prefill:],
                                 strict=True):
        if kind == ALLOC:
            pfns[slot] = alloc(order)
        else:
            free(pfns[slot], order)
    return time.process_time() - t0


def run_fragsim(nr_pages, ops, nr_prefill, nr_slots) -> tuple[float, Zone]:
    zone = Zone(nr_pages, cpus=2)
    pfns = [0] * nr_slots
    kinds, orders, mts, cpus, slots = ops
    alloc, free = zone.alloc, zone.free
    for i in range(nr_prefill):
        pfns[slots[i]] = alloc(orders[i], mts[i], cpus[i])
    t0 = time.process_time()
    for kind, order, mt, cpu, slot in zip(kinds[nr_prefill:], orders[nr_prefill:],
                                          mts[nr_prefill:], cpus[nr_prefill:],
                                          slots[nr_prefill:], strict=True):
        if kind == ALLOC:
            pfns[slot] = alloc(order, mt, cpu)
        else:
            free(pfns[slot], order, cpu)
    elapsed = time.process_time() - t0
    if zone.stats.alloc_fail_wmark or zone.stats.alloc_fail_nopage:
        raise SystemExit("fragsim refused an allocation: the sequences diverged")
    return elapsed, zone


def run_fragsim_compiled(nr_pages, ops, nr_prefill, nr_slots) -> tuple[float, Zone]:
    """``run_fragsim`` with the loop compiled: ``sim.buddy.apply_ops`` walks the
    sequence in typed vectors, as a compiled workload loop calls the zone in a run and
    as the C loop walks its arrays, so that what is timed is the zone's work and not
    the interpreter's loop around it (which costs more than the zone's own work:
    docs/performance.md, session 17). The vectors are made before the clock starts."""
    zone = Zone(nr_pages, cpus=2)
    kinds, orders, mts, cpus, slots = (vec[i32](a) for a in ops)
    pfns = vec[i64]([0] * nr_slots)
    refused = apply_ops(zone, kinds, orders, mts, cpus, slots, pfns, 0, nr_prefill)
    t0 = time.process_time()
    refused += apply_ops(zone, kinds, orders, mts, cpus, slots, pfns, nr_prefill, len(kinds))
    elapsed = time.process_time() - t0
    if refused or zone.stats.alloc_fail_wmark or zone.stats.alloc_fail_nopage:
        raise SystemExit("fragsim refused an allocation: the sequences diverged")
    return elapsed, zone


def free_blocks(free_lists) -> list[int]:
    """Free blocks per order of a reference's free sets or lists."""
    return [len(blocks) for blocks in free_lists]


def run_lifo(nr_pages, ops, nr_prefill) -> LifoBuddy:
    """The sequence through ``LifoBuddy``, prefill included (untimed: a check)."""
    ref = LifoBuddy(nr_pages)
    kinds, orders, _mts, _cpus, slots = ops
    pfns: dict[int, int | None] = {}
    for kind, order, slot in zip(kinds, orders, slots, strict=True):
        if kind == ALLOC:
            pfns[slot] = ref.alloc(order)
        else:
            ref.free(pfns[slot], order)
    return ref


def reference_free_blocks(nr_pages, ops) -> list[int]:
    """Free blocks per order after the sequence through ``ReferenceBuddy`` (untimed)."""
    ref = ReferenceBuddy(nr_pages)
    kinds, orders, _mts, _cpus, slots = ops
    pfns: dict[int, int] = {}
    for kind, order, slot in zip(kinds, orders, slots, strict=True):
        if kind == ALLOC:
            pfn = ref.alloc(order)
            if pfn is None:
                raise SystemExit("the reference refused an allocation")
            pfns[slot] = pfn
        else:
            ref.free(pfns[slot], order)
    return free_blocks(ref.free_sets)


OPS_MAGIC = b"FSBUDDY1"
CBUDDY_SOURCE = Path(__file__).resolve().parent / "cbuddy.c"
COMPILERS = ("cc", "gcc", "clang")


def write_ops(path: Path, nr_pages: int, ops, nr_prefill: int, nr_slots: int,
              max_order: int = 10) -> None:
    """The sequence as bench/cbuddy.c reads it (see its header comment)."""
    kinds, orders, _mts, _cpus, slots = ops
    header = array("q", [int.from_bytes(OPS_MAGIC, "little"), nr_pages, max_order,
                         len(kinds), nr_prefill, nr_slots, 0, 0])
    if sys.byteorder != "little":
        for a in (header, slots):
            a.byteswap()
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(kinds.tobytes())
        f.write(orders.tobytes())
        f.write(slots.tobytes())
    if sys.byteorder != "little":
        for a in (header, slots):
            a.byteswap()


def c_compiler() -> str | None:
    """The system C compiler: $CC if set and found, else cc, gcc or clang on PATH."""
    for name in ([os.environ["CC"]] if os.environ.get("CC") else []) + list(COMPILERS):
        found = shutil.which(name)
        if found:
            return found
    return None


NO_COMPILER = "C buddy loop: skipped, no C compiler (cc, gcc or clang) on PATH"


def build_cbuddy(directory: Path) -> Path | None:
    """bench/cbuddy.c compiled with -O2 into ``directory``; None when there is no
    compiler (``NO_COMPILER`` says so). A compiler that fails is an error."""
    compiler = c_compiler()
    if compiler is None:
        return None
    exe = Path(directory) / "cbuddy"
    subprocess.run([compiler, "-O2", "-o", str(exe), str(CBUDDY_SOURCE)], check=True,
                   capture_output=True, text=True)
    return exe


def run_c(nr_pages, ops, nr_prefill, nr_slots, repeat: int = 1) -> dict:
    """The sequence through bench/cbuddy.c, ``repeat`` times: the median rate over the
    timed part (after the prefill), in operations per CPU second, and the end state.
    ``{"skipped": NO_COMPILER}`` when there is no compiler."""
    with tempfile.TemporaryDirectory(prefix="fragsim-cbuddy-") as tmp:
        exe = build_cbuddy(Path(tmp))
        if exe is None:
            return {"skipped": NO_COMPILER}
        ops_file = Path(tmp) / "ops.bin"
        write_ops(ops_file, nr_pages, ops, nr_prefill, nr_slots)
        out = subprocess.run([str(exe), str(ops_file), str(repeat)], check=True,
                             capture_output=True, text=True).stdout
    rates, free, failed, checksum = [], [], 0, 0
    for line in out.splitlines():
        word, *values = line.split()
        if word == "seconds":
            rates.append(int(values[0]) / max(float(values[1]), 1e-9))
        elif word == "free":
            free.append(int(values[1]))
        elif word == "failed":
            failed = int(values[0])
        elif word == "checksum":
            checksum = int(values[0])
    return {"ops_per_s": statistics.median(rates), "rates": rates, "free_blocks": free,
            "failed": failed, "checksum": checksum}


def c_check(nr_pages, ops, nr_prefill, c_result: dict) -> dict:
    """The C loop's end state against the Python references on the same sequence.

    ``lifo_equal``: the same free blocks per order and the same checksum (every free
    block's pfn, in list order) as ``LifoBuddy``, the same allocator in Python;
    ``total_equal``: as many free pages as ``ReferenceBuddy``. The reference's free
    blocks per order are reported but need not be equal: its sets pop in hash-table
    order, so it splits and merges other blocks than a LIFO list does."""
    lifo = run_lifo(nr_pages, ops, nr_prefill)
    lifo_blocks = free_blocks(lifo.free_lists)
    ref_blocks = reference_free_blocks(nr_pages, ops)
    c_blocks = c_result["free_blocks"]

    def pages(blocks):
        return sum(n << order for order, n in enumerate(blocks))

    lifo_equal = (c_blocks == lifo_blocks and c_result["checksum"] == lifo.checksum()
                  and c_result["failed"] == 0)
    return {"c_free_blocks": c_blocks, "lifo_free_blocks": lifo_blocks,
            "reference_free_blocks": ref_blocks, "lifo_equal": lifo_equal,
            "total_equal": pages(c_blocks) == pages(ref_blocks),
            "ok": lifo_equal and pages(c_blocks) == pages(ref_blocks)}


RSS_PROBE = """
import sys
from sim.buddy import Zone
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
before = rss()
zone = Zone(int(sys.argv[1]))
print(rss() - before, zone.memory_bytes())
"""


def bytes_per_page(nr_pages: int) -> tuple[float, float]:
    """(RSS growth per page, counted storage per page) of building one zone.

    Measured in a fresh interpreter, so the heap left by the timing runs cannot hide it.
    """
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(nr_pages)],
        capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    return int(out[0]) / nr_pages, int(out[1]) / nr_pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-gib", type=int, default=16)
    parser.add_argument("--ops", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 GiB zone, 200 k ops, 3 repeats")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.memory_gib, args.ops, args.repeat = 1, 200_000, 3
    nr_pages = args.memory_gib * GiB // 4096

    ops, nr_prefill, nr_slots = make_ops(nr_pages, args.ops)
    ref_rates, sim_rates, compiled_rates = [], [], []
    for _ in range(args.repeat):
        ref_rates.append(args.ops / run_reference(nr_pages, ops, nr_prefill, nr_slots))
        elapsed, zone = run_fragsim(nr_pages, ops, nr_prefill, nr_slots)
        sim_rates.append(args.ops / elapsed)
        elapsed, compiled_zone = run_fragsim_compiled(nr_pages, ops, nr_prefill, nr_slots)
        compiled_rates.append(args.ops / elapsed)
        if compiled_zone.nr_free_by_type() != zone.nr_free_by_type():
            raise SystemExit("apply_ops left the zone otherwise than the Python loop")
    c = run_c(nr_pages, ops, nr_prefill, nr_slots, args.repeat)
    if "skipped" not in c:
        c["check"] = c_check(nr_pages, ops, nr_prefill, c)
    rss_per_page, stored_per_page = bytes_per_page(nr_pages)
    ratios = [s / r for s, r in zip(sim_rates, ref_rates, strict=True)]
    result = {
        "memory_gib": args.memory_gib,
        "ops": args.ops,
        "repeat": args.repeat,
        "reference_ops_per_s": statistics.median(ref_rates),
        "fragsim_ops_per_s": statistics.median(sim_rates),
        "fragsim_compiled_loop_ops_per_s": statistics.median(compiled_rates),
        "ratio": statistics.median(ratios),
        "rss_bytes_per_page": rss_per_page,
        "stored_bytes_per_page": stored_per_page,
        "fragsim_stats": zone.stats.as_dict(),
        "c": c,
    }
    print(f"zone {args.memory_gib} GiB ({nr_pages} pages), {args.ops} ops after a 50% fill, "
          f"median of {args.repeat}, ops per CPU second")
    compiled = result["fragsim_compiled_loop_ops_per_s"]
    print("  loop in the interpreter:")
    print(f"    reference (set free lists)  {result['reference_ops_per_s']:>12,.0f} ops/s")
    print(f"    fragsim Zone (mt + pcp)     {result['fragsim_ops_per_s']:>12,.0f} ops/s")
    print(f"    ratio                       {result['ratio']:>12.2f} x")
    print("  loop compiled:")
    print(f"    fragsim Zone (apply_ops)    {compiled:>12,.0f} ops/s")
    if "skipped" in c:
        print(f"  {c['skipped']}")
    else:
        print(f"    C loop (bench/cbuddy.c)     {c['ops_per_s']:>12,.0f} ops/s: fragsim "
              f"{compiled / c['ops_per_s']:.3f}x (from the interpreter "
              f"{result['fragsim_ops_per_s'] / c['ops_per_s']:.3f}x, the reference "
              f"{result['reference_ops_per_s'] / c['ops_per_s']:.3f}x); end state "
              f"{'as LifoBuddy' if c['check']['ok'] else 'DIFFERS from LifoBuddy'}")
    print(f"  memory: {rss_per_page:.1f} B/page RSS growth, {stored_per_page:.1f} B/page stored")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
