"""Sweep scaling: ``--jobs 2`` against ``--jobs 1`` on 8 short points.

DESIGN.md's target: on 2 cores, ``--jobs 2`` is at least 1.7x as fast as ``--jobs 1``.
The sweep is the small file server of configs/sweeps/memory_x_policy.yaml at 128 MiB,
one seed, no variants, ``defrag.used_ratio`` swept over 8 values (each point does the
same work, so the pool is balanced); every repeat writes a fresh directory (no resume)
and draws no plots. ``--jobs 1`` runs in this process, as the CLI does; ``--jobs 2`` is
the forked process pool.

Per-point overhead is the wall time a point costs beyond its own simulation:
``(jobs x sweep wall - sum of the runs' wall_s) / points``: validation, the pool, pickling
the results back, writing the run directories and sweep.csv.

    python bench/bench_sweep.py            # 8 points of 4 s simulated, median of 3
    python bench/bench_sweep.py --quick    # 8 points of 1 s, median of 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from sim.sweep import default_jobs, run_sweep

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "configs" / "sweeps" / "memory_x_policy.yaml"


def write_config(folder: Path, points: int, duration: str) -> Path:
    raw = yaml.safe_load(BASE.read_text())
    raw.pop("variants")
    raw["name"] = "bench-sweep"
    raw["duration"] = duration
    raw["defrag"]["enabled"] = True
    ratios = [round(10 + 80 * i / max(1, points - 1)) for i in range(points)]
    raw["sweep"] = {"grid": {"defrag.used_ratio": ratios}, "seeds": 1}
    path = folder / "bench_sweep.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def one_sweep(config: Path, folder: Path, jobs: int) -> tuple[float, float, int]:
    """(sweep wall seconds, sum of the runs' own wall_s, runs)."""
    out = folder / f"out-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = run_sweep(config, out=out, jobs=jobs, plots=False)
    wall = time.perf_counter() - started
    if report.failures or report.ran != report.total:
        raise SystemExit(f"bench sweep failed: {report.failures[:1]}")
    runs = 0
    simulated = 0.0
    for summary in (out / "points").glob("*/summary.json"):
        for data in json.loads(summary.read_text())["variants"].values():
            for run in data["runs"]:
                simulated += run["wall_s"]
                runs += 1
    return wall, simulated, runs


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                   check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--duration", default="4s", help="simulated time per point")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 s of simulated time a point")
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    args = parser.parse_args(argv)
    duration = "1s" if args.quick else args.duration
    print(f"machine: {default_jobs()} CPUs usable ({os.cpu_count()} online), {cpu_model()}, "
          f"Python {platform.python_version()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, args.points, duration)
        one_sweep(config, folder, 1)  # warm-up: imports, page cache
        results: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for jobs in (1, 2):  # interleaved, so that a busy spell hits both alike
                results[jobs].append(one_sweep(config, folder, jobs))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{args.points} points x 1 seed, {duration} simulated each, median of "
          f"{args.repeats} (min..max)\n")
    header = ("jobs", "sweep wall (s)", "run wall / point (s)", "overhead / point (ms)",
              "speedup")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    median = {jobs: statistics.median(w for w, _, _ in rows) for jobs, rows in results.items()}
    for jobs, rows in results.items():
        walls = [w for w, _, _ in rows]
        wall = median[jobs]
        per_run = statistics.median(s / n for _, s, n in rows)
        overhead = statistics.median((jobs * w - s) / n for w, s, n in rows)
        print(f"{jobs} | {wall:.2f} ({min(walls):.2f}..{max(walls):.2f}) | {per_run:.3f} | "
              f"{overhead * 1000:.0f} | {median[1] / wall:.2f}x")
    print("\ntarget: --jobs 2 >= 1.7x --jobs 1 on 2 cores (DESIGN.md, Performance targets)")
    if args.json:
        args.json.write_text(json.dumps({"jobs1_s": median[1], "jobs2_s": median[2],
                                         "speedup": median[1] / median[2]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
