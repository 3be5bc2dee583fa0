"""A twin's free pages in the Normal zone by pageblock type, as /proc/pagetypeinfo's
first table sums them, at the capture's deletion end (121 s) and end (180 s), and before.

    python configs/real/fileserver-c/twin_free_by_type.py configs/real/fileserver-b.yaml [SEED]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from sim.experiment import load_config  # noqa: E402
from sim.machine import Machine  # noqa: E402
from sim.mmzone import ZONE_NORMAL  # noqa: E402
from sim.runner import build_workloads  # noqa: E402

NAMES = ("Unmovable", "Movable", "Reclaimable")


def main(config, seed):
    machine = Machine(load_config(config, []), seed)
    machine.start(build_workloads(machine))
    normal = machine.node.node_zones[ZONE_NORMAL]
    for t in (50, 80, 100, 121, 150, 180):
        machine.env.run(until=t)
        by = normal.nr_free_by_type()
        parts = [f"{NAMES[i]} {sum(n << o for o, n in enumerate(by[i]))} {by[i]}"
                 for i in range(3)]
        print(t, " | ".join(parts), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
