"""When and on what memory the quickstart's direct compactions run, for one variant and
seed: their number per 5 s, kswapd's state at each (running, or woken and not yet
running), how many got their page, and at the median compaction the zone's free pages,
its low and high watermarks and its free blocks of order 5 or more (in order-5 units).
Pure-Python build (it wraps ``PageAllocator.alloc_pages_direct_compact`` and
``Kswapd.__init__``).

    python configs/quickstart_compactions.py defrag-on 5
    python configs/quickstart_compactions.py defrag-off 5
"""
import collections
import os
import statistics
import sys
from pathlib import Path

os.environ["FRAGSIM_PURE_PYTHON"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sim.daemons as daemons  # noqa: E402
import sim.page_alloc as page_alloc  # noqa: E402
from sim.buddy import WMARK_HIGH, WMARK_LOW  # noqa: E402
from sim.experiment import load_config  # noqa: E402
from sim.runner import run_machine  # noqa: E402


def main(variant: str, seed: int) -> None:
    kswapds = []
    init = daemons.Kswapd.__init__

    def kswapd_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        kswapds.append(self)

    daemons.Kswapd.__init__ = kswapd_init
    rows = []
    compact = page_alloc.PageAllocator.alloc_pages_direct_compact

    def traced(self, order, mt, cpu, owner, alloc_flags, prio, highest_zoneidx=2,
               gfp_fs=True):
        kswapd = kswapds[-1]
        zone = (next(z for z in self.node.zonelist if z.zone_idx <= highest_zoneidx)
                if self.node is not None else self.zone)
        state = ("running" if kswapd.running
                 else "woken" if kswapd._event.triggered else "asleep")
        before = (zone.nr_free_pages, zone.wmark_pages(WMARK_LOW), zone.wmark_pages(WMARK_HIGH),
                  sum(zone.nr_free[o] << (o - 5) for o in range(5, zone.max_order + 1)))
        result = compact(self, order, mt, cpu, owner, alloc_flags, prio, highest_zoneidx,
                         gfp_fs)
        if order > 0:  # order 0 returns at once: nothing is compacted
            rows.append((kswapd.env.now, order, state, result[1] is not None, *before))
        return result

    page_alloc.PageAllocator.alloc_pages_direct_compact = traced
    config = load_config(ROOT / "configs/quickstart.yaml", [], variant=variant)
    summary = run_machine(config, seed, variant).summary
    print(f"{variant}, seed {seed}: THP success {summary['thp_success_rate']:.2f}, "
          f"{len(rows)} direct compactions")
    per_5s = collections.Counter(int(r[0] // 5) * 5 for r in rows)
    print("  per 5 s (start: count):", dict(sorted(per_5s.items())))
    print("  kswapd:", dict(collections.Counter(r[2] for r in rows)),
          "got their page:", sum(r[3] for r in rows))
    print("  orders:", dict(collections.Counter(r[1] for r in rows)))
    if rows:
        names = ("free pages", "low", "high", "order-5 blocks free")
        medians = [statistics.median(r[i] for r in rows) for i in range(4, 8)]
        print("  at the median compaction:",
              ", ".join(f"{n} {m:g}" for n, m in zip(names, medians, strict=True)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
