"""An experiment, not the model: what if kswapd's concurrent reclaim were seen?

Before each direct compaction of order > 3 while the Normal zone is below its high
watermark (kswapd, woken, is reclaiming on the other CPU), reclaim ``PAGES`` page-cache
pages on the other CPU first, as much as run-4 measured kswapd freeing during a real
compaction (8 2 MiB blocks: 4 096 pages). A stand-in for time fragsim's direct
compaction does not take, to see whether the twin's counters move towards the kernel's.
Pure-Python build (it wraps ``PageAllocator.alloc_pages_direct_compact``); seed 1.

    python configs/real/fileserver-c/concurrency_experiment.py configs/real/fileserver-b.yaml 4096
    python configs/real/fileserver-c/concurrency_experiment.py configs/real/fileserver-b.yaml 0
"""
import os
import sys
from pathlib import Path

os.environ["FRAGSIM_PURE_PYTHON"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import sim.page_alloc as page_alloc  # noqa: E402
from sim import runner  # noqa: E402
from sim.buddy import WMARK_HIGH  # noqa: E402
from sim.mmzone import ZONE_NORMAL  # noqa: E402
from sim.stats import numeric_leaves  # noqa: E402

DEF_PRIORITY = 12
KEYS = ("compaction.stalls", "compaction.successes", "compaction.failures",
        "engine.direct_reclaim", "engine.direct_reclaimed", "engine.pgsteal_kswapd")


def main(config, pages):
    compact = page_alloc.PageAllocator.alloc_pages_direct_compact
    inline = [0, 0]

    def with_kswapd_meanwhile(self, order, mt, cpu, owner, alloc_flags, prio,
                              highest_zoneidx=ZONE_NORMAL, gfp_fs=True):
        zone = self.node.node_zones[ZONE_NORMAL] if self.node is not None else self.zone
        if pages and order > 3 and zone.nr_free_pages < zone.wmark_pages(WMARK_HIGH):
            inline[0] += 1
            inline[1] += self.reclaim.shrink_node(pages, DEF_PRIORITY, 1 if cpu == 0 else 0)
        return compact(self, order, mt, cpu, owner, alloc_flags, prio, highest_zoneidx,
                       gfp_fs)

    page_alloc.PageAllocator.alloc_pages_direct_compact = with_kswapd_meanwhile
    flat = numeric_leaves(runner.run(config, seed=1).summary)
    print(f"pages {pages}: reclaimed before {inline[0]} compactions, {inline[1]} pages")
    for key in KEYS:
        print(f"  {key}: {flat.get(key)}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
