"""A twin's fallback allocations (``__rmqueue_steal`` and ``__rmqueue_claim``), by zone,
requested type, the type of the block taken, order and 30 s window: the counterpart of
``kmem:mm_page_alloc_extfrag`` in run-3's trace. Pure-Python build (it wraps Zone methods).

    python configs/real/fileserver-c/twin_fallbacks.py configs/real/fileserver-b.yaml
"""
import collections
import os
import sys
from pathlib import Path

os.environ["FRAGSIM_PURE_PYTHON"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import sim.buddy as buddy  # noqa: E402
from sim import runner  # noqa: E402

NAMES = {0: "UNMOV", 1: "MOV", 2: "RECL", 3: "HIGHATOMIC"}


def main(config):
    steals, claims = collections.Counter(), collections.Counter()
    now = [0.0]
    steal, claim = buddy.Zone._rmqueue_steal, buddy.Zone._rmqueue_claim

    def traced_steal(self, order, mt):
        pfn = steal(self, order, mt)
        if pfn >= 0:
            block = self.pageblock_migratetype(pfn)
            steals[(self.zone_idx, NAMES[mt], NAMES[block], order, int(now[0] // 30) * 30)] += 1
        return pfn

    def traced_claim(self, order, mt, alloc_flags):
        pfn = claim(self, order, mt, alloc_flags)
        if pfn >= 0:
            claims[(self.zone_idx, NAMES[mt], order, int(now[0] // 30) * 30)] += 1
        return pfn

    buddy.Zone._rmqueue_steal = traced_steal
    buddy.Zone._rmqueue_claim = traced_claim
    runner.run(config, seed=1, progress=lambda t: now.__setitem__(0, t))
    print("steals (zone index, requested type, block type, order, window start s): count")
    for key, n in sorted(steals.items()):
        print(" ", key, n)
    print("claims (zone index, requested type, order, window start s): count")
    for key, n in sorted(claims.items()):
        print(" ", key, n)


if __name__ == "__main__":
    main(sys.argv[1])
