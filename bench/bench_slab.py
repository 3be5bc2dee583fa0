"""Slab object alloc+free rate of sim/slab.py (DESIGN.md "Performance targets").

A 192-byte cache (dentry geometry) on a 4 GiB zone with two CPUs: 200 000 live objects,
then a random mix of allocations and frees of random live objects (on a random CPU)
that keeps the population steady. Reported: operations per second of wall time for the
whole loop, and with the driver loop's own cost (measured on the same sequence with no
allocator) taken out.

    python bench/bench_slab.py            # 3 repeats, 2 M operations each
    python bench/bench_slab.py --quick
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.buddy import Zone  # noqa: E402
from sim.slab import SlabCaches  # noqa: E402


def run_once(n_ops: int, live0: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    ops = [rng.random() < 0.5 for _ in range(n_ops)]
    picks = [rng.randrange(1 << 30) for _ in range(n_ops)]
    cpus = [rng.randrange(2) for _ in range(n_ops)]

    zone = Zone(1 << 20, cpus=2)
    cache = SlabCaches(zone).create("dentry", 192, rcu_free=False)
    alloc, free = cache.alloc, cache.free
    live = [alloc(i & 1) for i in range(live0)]
    t = time.perf_counter()
    for i in range(n_ops):
        if ops[i] or not live:
            live.append(alloc(cpus[i]))
        else:
            j = picks[i] % len(live)
            live[j], live[-1] = live[-1], live[j]
            free(live.pop(), cpus[i])
    slab_time = time.perf_counter() - t

    shadow = list(range(live0))
    t = time.perf_counter()
    for i in range(n_ops):  # the same driver with a stand-in for the allocator
        if ops[i] or not shadow:
            shadow.append(i)
        else:
            j = picks[i] % len(shadow)
            shadow[j], shadow[-1] = shadow[-1], shadow[j]
            shadow.pop()
    loop_time = time.perf_counter() - t
    cache.check()
    return n_ops / slab_time, n_ops / (slab_time - loop_time)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_ops, repeats = (300_000, 1) if args.quick else (2_000_000, 3)
    results = [run_once(n_ops, 200_000, seed) for seed in range(repeats)]
    whole = statistics.median(r[0] for r in results)
    net = statistics.median(r[1] for r in results)
    print(f"slab alloc+free: {whole / 1e6:.2f} M ops/s with the driver loop, "
          f"{net / 1e6:.2f} M ops/s net of it ({n_ops} ops x {repeats})")


if __name__ == "__main__":
    main()
