"""Why the quickstart's defrag arm compacts directly more: the fallbacks that boost the
watermark, and the kswapd runs they bring, for one variant and seed, from 10 s on.

Prints one JSON line:

- ``claims``: ``try_to_claim_block`` calls in DMA32 (each one is a fallback into a
  pageblock of another migratetype, and each one boosts the watermark,
  ``boost_watermark``, claimed or not), by ``wanted<-block`` type (U, M, R: Unmovable,
  Movable, Reclaimable) and outcome (``claimed`` the block, ``failed`` to, or took a
  ``whole`` block);
- ``kswapd``: ``balance_pgdat`` runs by the order kswapd was woken for, with
  ``+boost`` when a zone's watermark was boosted at its start: ``[runs, pages
  reclaimed]``;
- ``thp`` (the probe's success rate from 10 s) and ``stalls`` (direct compactions).

Pure-Python build (it wraps ``Zone._try_to_claim_block`` and
``Reclaim.balance_pgdat``). About 15 s a run::

    python configs/quickstart_boosts.py defrag-off 5
    python configs/quickstart_boosts.py defrag-on 5
"""
import collections
import json
import os
import sys
from pathlib import Path

os.environ["FRAGSIM_PURE_PYTHON"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sim.buddy as buddy  # noqa: E402
import sim.machine as machine_mod  # noqa: E402
import sim.vmscan as vmscan  # noqa: E402
from sim.experiment import load_config  # noqa: E402
from sim.runner import run_machine  # noqa: E402

FROM = 10.0  # the quickstart's measure_from
TYPES = "UMRH"  # Unmovable, Movable, Reclaimable, HighAtomic


def main(variant: str, seed: int) -> dict:
    machines = []
    init = machine_mod.Machine.__init__

    def machine_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        machines.append(self)

    def now() -> float:
        return machines[0].env.now if machines else 0.0

    claims: collections.Counter = collections.Counter()
    claim = buddy.Zone._try_to_claim_block

    def traced_claim(self, pfn, current_order, order, start_mt, block_mt, alloc_flags):
        got = claim(self, pfn, current_order, order, start_mt, block_mt, alloc_flags)
        if now() >= FROM and self.zone_idx == 1:  # DMA32
            outcome = ("whole" if current_order >= self.pageblock_order
                       else "claimed" if got >= 0 else "failed")
            claims[f"{TYPES[start_mt]}<-{TYPES[block_mt]} {outcome}"] += 1
        return got

    runs: dict = collections.defaultdict(lambda: [0, 0])
    balance = vmscan.Reclaim.balance_pgdat

    def traced_balance(self, order=0, highest_zoneidx=-1):
        start = now()
        before = self.stats.kswapd_reclaimed
        boosted = any(z.watermark_boost for z in self.zones)
        result = yield from balance(self, order, highest_zoneidx)
        if start >= FROM:
            run = runs[f"order{order}{'+boost' if boosted else ''}"]
            run[0] += 1
            run[1] += self.stats.kswapd_reclaimed - before
        return result

    machine_mod.Machine.__init__ = machine_init
    buddy.Zone._try_to_claim_block = traced_claim
    vmscan.Reclaim.balance_pgdat = traced_balance
    try:
        config = load_config(ROOT / "configs" / "quickstart.yaml", [], variant=variant)
        summary = run_machine(config, seed, variant).summary
    finally:
        machine_mod.Machine.__init__ = init
        buddy.Zone._try_to_claim_block = claim
        vmscan.Reclaim.balance_pgdat = balance
    return {"variant": variant, "seed": seed, "thp": summary["thp_success_rate"],
            "stalls": summary["compaction"]["stalls"], "claims": dict(sorted(claims.items())),
            "kswapd": dict(sorted(runs.items()))}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
