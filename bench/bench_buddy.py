"""Bare allocator benchmark: fragsim's Zone against a plain Python buddy loop.

Both run the same random operation sequence in the same process, so the ratio of
their alloc+free rates cancels machine noise (DESIGN.md, "Performance targets").

The sequence: fill a 16 GiB zone (4 Mi pages) to about 50 % with blocks of order 0
(90 %) or 1-3 (10 %), then a mix of allocations and frees of random live blocks that
keeps the occupancy near 50 %. fragsim runs with migratetypes (80 % movable, 15 %
unmovable, 5 % reclaimable), per-CPU lists on two CPUs and watermark checks, as a
kernel would; the reference has one set of free pfns per order and nothing else.

    python bench/bench_buddy.py            # 5 repeats, 2 M operations each
    python bench/bench_buddy.py --quick    # a smaller zone and fewer operations
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.buddy import Zone  # noqa: E402
from sim.migratetype import (  # noqa: E402
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
)

GiB = 1 << 30
ALLOC, FREE = 0, 1


class ReferenceBuddy:
    """The plainest Python buddy allocator: a set of free pfns per order."""

    def __init__(self, nr_pages: int, max_order: int = 10) -> None:
        self.max_order = max_order
        self.free_sets: list[set[int]] = [set() for _ in range(max_order + 1)]
        pfn = 0
        while pfn < nr_pages:
            order = max_order
            while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > nr_pages):
                order -= 1
            self.free_sets[order].add(pfn)
            pfn += 1 << order

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
    t0 = time.perf_counter()
    for kind, order, slot in zip(kinds[nr_prefill:], orders[nr_prefill:], slots[nr_prefill:],
                                 strict=True):
        if kind == ALLOC:
            pfns[slot] = alloc(order)
        else:
            free(pfns[slot], order)
    return time.perf_counter() - t0


def run_fragsim(nr_pages, ops, nr_prefill, nr_slots) -> tuple[float, Zone]:
    zone = Zone(nr_pages, cpus=2)
    pfns = [0] * nr_slots
    kinds, orders, mts, cpus, slots = ops
    alloc, free = zone.alloc, zone.free
    for i in range(nr_prefill):
        pfns[slots[i]] = alloc(orders[i], mts[i], cpus[i])
    t0 = time.perf_counter()
    for kind, order, mt, cpu, slot in zip(kinds[nr_prefill:], orders[nr_prefill:],
                                          mts[nr_prefill:], cpus[nr_prefill:],
                                          slots[nr_prefill:], strict=True):
        if kind == ALLOC:
            pfns[slot] = alloc(order, mt, cpu)
        else:
            free(pfns[slot], order, cpu)
    elapsed = time.perf_counter() - t0
    if zone.stats.alloc_fail_wmark or zone.stats.alloc_fail_nopage:
        raise SystemExit("fragsim refused an allocation: the sequences diverged")
    return elapsed, zone


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
    ref_rates, sim_rates = [], []
    for _ in range(args.repeat):
        ref_rates.append(args.ops / run_reference(nr_pages, ops, nr_prefill, nr_slots))
        elapsed, zone = run_fragsim(nr_pages, ops, nr_prefill, nr_slots)
        sim_rates.append(args.ops / elapsed)
    rss_per_page, stored_per_page = bytes_per_page(nr_pages)
    ratios = [s / r for s, r in zip(sim_rates, ref_rates, strict=True)]
    result = {
        "memory_gib": args.memory_gib,
        "ops": args.ops,
        "repeat": args.repeat,
        "reference_ops_per_s": statistics.median(ref_rates),
        "fragsim_ops_per_s": statistics.median(sim_rates),
        "ratio": statistics.median(ratios),
        "rss_bytes_per_page": rss_per_page,
        "stored_bytes_per_page": stored_per_page,
        "fragsim_stats": zone.stats.as_dict(),
    }
    print(f"zone {args.memory_gib} GiB ({nr_pages} pages), {args.ops} ops after a 50% fill, "
          f"median of {args.repeat}")
    print(f"  reference (set free lists)  {result['reference_ops_per_s']:>12,.0f} ops/s")
    print(f"  fragsim Zone (mt + pcp)     {result['fragsim_ops_per_s']:>12,.0f} ops/s")
    print(f"  ratio                       {result['ratio']:>12.2f} x")
    print(f"  memory: {rss_per_page:.1f} B/page RSS growth, {stored_per_page:.1f} B/page stored")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
