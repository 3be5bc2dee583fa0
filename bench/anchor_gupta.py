"""The real-kernel compaction anchor: simulated vs real unusable index, as Markdown.

The real run (tests/data/compaction/gupta-12g-keep1of4, Linux 6.18.44): 12 GiB of
anonymous pages with THP off, 3 of every 4 pages freed with madvise(MADV_DONTNEED), then
``echo 1 > /proc/sys/vm/compact_memory`` (1.51 s). The model drives the allocator directly:

- a Zone of the real Normal zone's managed pages (3 244 032), 2 CPUs, and its min watermark
  (13 631 pages, so ``min_free_kbytes = 13631 * 4``); low, high and the pageset limits then
  come out as in zoneinfo-after-run;
- 3 145 728 order-0 MOVABLE pages allocated on CPU 1 (the CPU whose pageset ``high`` grew,
  as zoneinfo-after-run shows);
- every page but one of each 4 (by allocation order, i.e. by virtual address) freed at
  order 0 on CPU 0, whose pageset ``high`` stays at ``high_min`` (8 519). The real
  2-freed buddy lists are 6 624 pages short of 1-filled + 2 359 296 freed; a pageset with
  high 8 519 and batch 63 that starts empty holds exactly 6 624 after these frees;
- manual compaction on CPU 0.

Which page of each 4 the program kept is not known, and buddyinfo cannot tell: every
choice leaves one order-0 and one order-1 free block per aligned group of 4. It matters to
6.18's free scanner: after five pageblocks without free pages (the free order-10 blocks'
second halves at the zone top, the blocks whose free pages sit on the per-CPU list) its
stride reaches COMPACT_CLUSTER_MAX and it samples only pfns that are multiples of 32. If
the kept page is the first of each 4 and the zone was fresh, every sampled pfn is a kept
page and compaction finds no target at all. The real run compacted, so its layout was not
that one (its fill ran through free blocks scattered by reclaim, whose phases vary). The
table's model keeps the last page of each 4 (--keep 3; 1 and 2 give the same numbers), and
a last column shows --keep 0.

    python bench/anchor_gupta.py            # the table (about 15 s)
    python bench/anchor_gupta.py --keep 1   # another kept page

``--as-user`` runs instead the recipe as a user writes it, ``configs/real/gupta-12g.yaml``
(the real machine's 0-idle snapshot, one process the scheduler places, the measured fill
and madvise rates, compact_memory from another process; no CPU placed by hand), over
``--seeds`` seeds, and prints per order the real index against the seeds' mean, min and
max, then each seed's CPUs and per-CPU lists:

    python bench/anchor_gupta.py --as-user --seeds 5          # about 85 s compiled
    python bench/anchor_gupta.py --as-user --set workloads.0.free_rate=100MiB \
        --set workloads.1.at=[110s] --set duration=115s      # any --set of fragsim run
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.buddy import Zone  # noqa: E402
from sim.compaction import CompactionStats, Compactor, CompactResult  # noqa: E402
from sim.metrics import unusable_index  # noqa: E402
from sim.migratetype import MIGRATE_MOVABLE  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests/data/compaction/gupta-12g-keep1of4"
NORMAL_MANAGED_PAGES = 3244032
NORMAL_MIN_PAGES = 13631
FILLED_PAGES = 12 << 18  # 12 GiB of 4 KiB pages
FILL_CPU, FREE_CPU = 1, 0


@dataclass
class AnchorRun:
    freed: list[int]  # unusable index per order (thousandths) after the frees
    compacted: list[int]  # and after compact_memory
    result: CompactResult
    stats: CompactionStats
    pcp_after_free: int
    pcp_after_compaction: int
    nr_free_freed: list[int] = field(default_factory=list)
    nr_free_compacted: list[int] = field(default_factory=list)
    zone: Zone | None = None


def run_anchor(keep: int = 3, scale: int = 1) -> AnchorRun:
    """The recipe above. ``scale`` divides the zone and the fill (pageset sizes and
    watermarks then follow the smaller zone)."""
    zone = Zone(
        NORMAL_MANAGED_PAGES // scale, cpus=2, min_free_kbytes=NORMAL_MIN_PAGES * 4 // scale
    )
    n = FILLED_PAGES // scale
    alloc = zone.alloc
    pfns = array("i", [0]) * n
    for i in range(n):
        pfn = alloc(0, MIGRATE_MOVABLE, FILL_CPU)
        if pfn is None:
            raise RuntimeError(f"fill stopped at page {i}: the watermark refused")
        pfns[i] = pfn
    free = zone.free
    for i in range(n):
        if i & 3 != keep:
            free(pfns[i], 0, FREE_CPU)
    freed = [unusable_index(zone.nr_free, order) for order in range(zone.max_order + 1)]
    nr_free_freed = list(zone.nr_free)
    pcp_after_free = zone.pcp[FREE_CPU].count
    compactor = Compactor(zone)
    result = compactor.compact_memory(cpu=FREE_CPU)
    compacted = [unusable_index(zone.nr_free, order) for order in range(zone.max_order + 1)]
    return AnchorRun(
        freed, compacted, result, compactor.stats, pcp_after_free, zone.pcp[FREE_CPU].count,
        nr_free_freed, list(zone.nr_free), zone,
    )


def real_unusable_index(snapshot: str, data: Path = DATA) -> list[float]:
    """The Normal zone's line of a recorded debugfs extfrag/unusable_index
    (``data``/``snapshot``.unusable_index; the shared anchor's by default)."""
    for line in (data / f"{snapshot}.unusable_index").read_text().splitlines():
        if line.split(",")[1].split()[1] == "Normal":
            return [float(x) for x in line.split()[4:]]
    raise ValueError(f"{snapshot}.unusable_index has no Normal zone line")


def markdown_table(run: AnchorRun, run_keep0: AnchorRun | None) -> str:
    real_freed = real_unusable_index("2-freed")
    real_compacted = real_unusable_index("3-compacted")
    head = (
        "| order | 2-freed real | 2-freed sim | diff "
        "| 3-compacted real | 3-compacted sim | diff |"
    )
    rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if run_keep0 is not None:
        head += " 3-compacted sim, first page kept |"
        rule += " ---: |"
    rows = [head, rule]
    for order in range(len(real_freed)):
        sim_f = run.freed[order] / 1000
        sim_c = run.compacted[order] / 1000
        row = (
            f"| {order} | {real_freed[order]:.3f} | {sim_f:.3f} | {sim_f - real_freed[order]:+.3f}"
            f" | {real_compacted[order]:.3f} | {sim_c:.3f} | {sim_c - real_compacted[order]:+.3f} |"
        )
        if run_keep0 is not None:
            row += f" {run_keep0.compacted[order] / 1000:.3f} |"
        rows.append(row)
    return "\n".join(rows)


AS_USER_CONFIG = Path(__file__).resolve().parent.parent / "configs/real/gupta-12g.yaml"


@dataclass
class UserRun:
    """One seed of the as-user config: the Normal zone's unusable index per order just
    before compact_memory and at the end, and where things ran."""

    seed: int
    freed: list[float]
    compacted: list[float]
    fill_cpu: int | None
    compact_cpu: int | None
    pcp_freed: list[int]  # each CPU's Normal list just before compact_memory
    pcp_compacted: list[int]
    migrated: int
    folios_split: int


def run_as_user(seed: int, overrides: list[str] | None = None,
                config: Path = AS_USER_CONFIG) -> UserRun:
    """``configs/real/gupta-12g.yaml`` (with ``overrides``, as ``--set``) for one seed,
    stopped just before its compact_memory to read the 2-freed state."""
    from sim.experiment import load_config
    from sim.machine import Machine
    from sim.mmzone import ZONE_NORMAL
    from sim.runner import build_workloads

    cfg = load_config(config, overrides or [])
    machine = Machine(cfg, seed)
    workloads = build_workloads(machine)
    machine.start(workloads)
    fill = next(w for w in workloads if w.kind == "fragment")
    compact = next(w for w in workloads if w.kind == "compact_memory")
    normal = machine.node.node_zones[ZONE_NORMAL]

    def index() -> list[float]:
        return [unusable_index(normal.nr_free, o) / 1000 for o in range(normal.max_order + 1)]

    machine.env.run(until=min(compact.params.at) - 1e-6)
    freed, pcp_freed = index(), [pcp.count for pcp in normal.pcp]
    machine.env.run(until=cfg.duration)
    return UserRun(
        seed, freed, index(),
        fill.schedule.cpu if fill.schedule is not None else None,
        compact.schedule.cpu if compact.schedule is not None else None,
        pcp_freed, [pcp.count for pcp in normal.pcp],
        machine.compactor.stats.migrated, machine.compactor.stats.folios_split)


def as_user_table(runs: list[UserRun]) -> str:
    """Real vs the seeds' mean (min-max) per order, 2-freed and 3-compacted."""
    real_freed = real_unusable_index("2-freed")
    real_compacted = real_unusable_index("3-compacted")
    rows = ["| order | 2-freed real | 2-freed sim mean (min-max) "
            "| 3-compacted real | 3-compacted sim mean (min-max) | diff of the mean |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for order in range(len(real_freed)):
        f = [r.freed[order] for r in runs]
        c = [r.compacted[order] for r in runs]
        mean_c = sum(c) / len(c)
        rows.append(
            f"| {order} | {real_freed[order]:.3f} | {sum(f) / len(f):.3f} "
            f"({min(f):.3f}-{max(f):.3f}) | {real_compacted[order]:.3f} | {mean_c:.3f} "
            f"({min(c):.3f}-{max(c):.3f}) | {mean_c - real_compacted[order]:+.3f} |")
    rows += ["", "| seed | fill/free CPU | compact_memory CPU | per-CPU lists before "
             "compaction | after | order-9 index after | pages migrated |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        rows.append(f"| {r.seed} | {r.fill_cpu} | {r.compact_cpu} | {r.pcp_freed} | "
                    f"{r.pcp_compacted} | {r.compacted[9]:.3f} | {r.migrated} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=int, default=3, choices=range(4),
                        help="which page of each 4 (by allocation order) stays allocated")
    parser.add_argument("--scale", type=int, default=1, help="divide the zone by this")
    parser.add_argument("--no-keep0", action="store_true", help="skip the --keep 0 column")
    parser.add_argument("--as-user", action="store_true",
                        help="run configs/real/gupta-12g.yaml instead (see above)")
    parser.add_argument("--seeds", type=int, default=5, help="--as-user: seeds 1..N")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="--as-user: a config override, as fragsim run --set")
    args = parser.parse_args(argv)
    if args.as_user:
        start = time.perf_counter()
        runs = [run_as_user(seed, args.set) for seed in range(1, args.seeds + 1)]
        print(f"Gupta anchor as a user writes it ({AS_USER_CONFIG.name}"
              f"{' ' + ' '.join(args.set) if args.set else ''}), unusable index of the "
              f"Normal zone, seeds 1-{args.seeds}\n")
        print(as_user_table(runs))
        print(f"\nmodel wall time {time.perf_counter() - start:.0f} s.")
        return 0
    start = time.perf_counter()
    run = run_anchor(args.keep, args.scale)
    wall = time.perf_counter() - start
    run0 = None if args.no_keep0 or args.keep == 0 else run_anchor(0, args.scale)
    s = run.stats
    print(f"Gupta anchor, Normal zone of {NORMAL_MANAGED_PAGES // args.scale} pages, "
          f"kept page {args.keep} of each 4 (unusable index, Normal zone)\n")
    print(markdown_table(run, run0))
    print(
        f"\ncompact_memory: {run.result.name}; migrate scanner {s.migrate_scanned} pfns, "
        f"free scanner {s.free_scanned}, isolated {s.isolated}, migrated {s.migrated}, "
        f"simulated {s.time_s:.2f} s (real 1.51 s wall); per-CPU list of CPU {FREE_CPU}: "
        f"{run.pcp_after_free} pages after the frees, {run.pcp_after_compaction} after "
        f"compaction; order-0/1 free blocks after compaction {run.nr_free_compacted[0]}/"
        f"{run.nr_free_compacted[1]} (real 8413/8168); model wall time {wall:.1f} s."
    )
    if run0 is not None:
        print(f"With the first page of each 4 kept: {run0.result.name}, "
              f"{run0.stats.migrated} pages migrated.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
