"""The same table as compaction_trace.py, for a twin run: each direct compaction of the
Normal zone, its result, the pages it migrated and how far each scanner went.

Runs the config's first seed in the pure-Python build (it wraps
``Compactor._compact_zone``, which the compiled build does not allow).

    python configs/real/fileserver-c/twin_compactions.py configs/real/fileserver-b.yaml
"""
import collections
import os
import sys
from pathlib import Path

os.environ["FRAGSIM_PURE_PYTHON"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compaction_trace import success_groups  # noqa: E402

import sim.compaction as compaction  # noqa: E402
from sim import runner  # noqa: E402
from sim.mmzone import ZONE_NORMAL  # noqa: E402

RESULT = {"COMPACT_SUCCESS": "success", "COMPACT_COMPLETE": "complete",
          "COMPACT_PARTIAL_SKIPPED": "partial_skipped", "COMPACT_CONTENDED": "contended"}


def main(config):
    rows = collections.defaultdict(list)
    skipped = collections.Counter()
    compact_zone = compaction.Compactor._compact_zone

    def traced(self, cc, capc=None):
        begin = (self.state.cached_migrate_pfn[0], self.state.cached_free_pfn)
        ret = compact_zone(self, cc, capc)
        if cc.direct_compaction and self.zone.zone_idx == ZONE_NORMAL:
            name = compaction.CompactResult(ret).name
            if name == "COMPACT_SKIPPED":
                skipped[cc.order] += 1
            else:
                mode = "async" if cc.mode == compaction.MigrateMode.MIGRATE_ASYNC else "sync"
                rows[(RESULT.get(name, name), mode)].append(
                    (self.last_run.migrated, cc.migrate_pfn - begin[0], begin[1] - cc.free_pfn))
        return ret

    compaction.Compactor._compact_zone = traced
    result = runner.run(config)
    engine = result.summary.get("engine", {})
    print(f"{config}, seed 1: {sum(len(v) for v in rows.values())} Normal runs, "
          f"{sum(skipped.values())} skipped (COMPACT_SKIPPED); direct compactions "
          f"{engine.get('direct_compact')}, direct reclaims {engine.get('direct_reclaim')}")
    print("| result (Normal) | runs | pages migrated per run (median) | migrate scanner moved "
          "(median pfns) | free scanner moved (median pfns) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (status, mode), zs in sorted(rows.items(), key=lambda kv: -len(kv[1])):
        med = [sorted(z[i] for z in zs)[len(zs) // 2] for i in range(3)]
        print(f"| {status} ({mode}) | {len(zs)} | {med[0]} | {med[1]} | {med[2]} |")
    print(success_groups([z[0] for z in rows.get(("success", "async"), [])]))


if __name__ == "__main__":
    main(sys.argv[1])
