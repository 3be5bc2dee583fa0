"""Large sweeps: planning time, and the dask path's cost per point, side by side.

    python bench/bench_dask.py                   # this tree
    python bench/bench_dask.py --before main     # and a git revision's code, interleaved
    python bench/bench_dask.py --quick           # 300 planned points, 50 and 200 run

Every figure comes from a fresh interpreter (``--child``) with ``PYTHONPATH`` on the
tree it measures: this repository, or ``git archive REV sim workloads`` unpacked in a
temporary folder. Both run the pure-Python source (``FRAGSIM_PURE_PYTHON=1``), so a
compiled build of one tree does not favour it. The trees are interleaved repeat by
repeat, so a busy spell on a shared machine hits both alike.

- planning: ``plan_sweep`` of a 1 000-point sweep, configs/sweeps/memory_x_policy.yaml
  (three variants) with a grid of 10 memory sizes x 100 ``defrag.used_ratio`` values,
  one seed; wall time, median of 3 (``--repeats``).
- dask: 100 and 1 000 trivial points (a 16 MiB machine, 100 ms simulated, about 20 ms
  a run) through ``DaskExecutor.map_unordered`` on a LocalCluster of 2 single-threaded
  worker processes, the sweep's own ``run_point``; the cluster is started before the
  clock. Overhead per point is ``(workers x map wall - sum of the runs' wall_s) /
  points``: submitting, scheduling, moving the result back, as bench_sweep.py counts it.
  A scheduler plugin records the most tasks the scheduler held at once and the most
  results held in worker memory at once (tasks in memory); a result's size is its
  pickle (dask's own estimate of a dataclass is the object's header). One repeat: the
  1 000 points take about a minute a tree on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "name": "bench-dask", "seed": 1, "duration": "100ms", "sample_every": "50ms",
    "machine": {"memory": "16MiB", "cpus": 2},
    "workloads": [
        {"kind": "kernel_alloc", "rate": 2000, "orders": {0: 0.9, 3: 0.1},
         "lifetime": {"dist": "exponential", "mean": "200ms"}},
        {"kind": "thp_probe", "interval": "50ms", "hold": "20ms"},
    ],
}


def planning_config(folder: Path, points: int) -> Path:
    import yaml

    raw = yaml.safe_load((REPO / "configs" / "sweeps" / "memory_x_policy.yaml").read_text())
    memories = [f"{64 + 8 * i}MiB" for i in range(10)]
    ratios = list(range(1, points // len(memories) + 1))
    raw["sweep"] = {"grid": {"machine.memory": memories, "defrag.used_ratio": ratios},
                    "seeds": 1}
    path = folder / f"plan-{points}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def trivial_config(folder: Path, points: int) -> Path:
    import yaml

    raw = dict(TINY, sweep={"grid": {"workloads.0.rate": list(range(2000, 2000 + points))},
                            "seeds": 1})
    path = folder / f"trivial-{points}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ------------------------------------------------------------------ in the child


def child_plan(config: str) -> dict:
    from sim.sweep import plan_sweep

    started = time.perf_counter()
    plan = plan_sweep(config, out=Path(config).parent / "unused")
    return {"wall_s": time.perf_counter() - started, "tasks": len(plan.tasks)}


def child_dask(config: str, workers: int) -> dict:
    from distributed.diagnostics.plugin import SchedulerPlugin

    from sim.sweep import open_executor, plan_sweep, run_point

    class Peaks(SchedulerPlugin):
        def __init__(self, scheduler):
            self.scheduler, self.results = scheduler, 0
            self.peak_tasks = self.peak_results = 0

        def transition(self, key, start, finish, *args, **kwargs):
            self.results += (finish == "memory") - (start == "memory")
            self.peak_results = max(self.peak_results, self.results)
            self.peak_tasks = max(self.peak_tasks, len(self.scheduler.tasks))

    plan = plan_sweep(config, out=Path(config).parent / "unused")
    with open_executor("dask", workers) as executor:
        scheduler = executor.cluster.scheduler
        peaks = Peaks(scheduler)
        scheduler.add_plugin(peaks)
        executor.client.submit(abs, -1).result()  # the workers are up and imported
        started = time.perf_counter()
        runs = failed = largest = 0
        run_s = 0.0
        for _i, outcome, error in executor.map_unordered(run_point, plan.tasks):
            if error is not None or not outcome.ok:
                failed += 1
                continue
            runs += 1
            run_s += outcome.wall_s
            if runs % 50 == 1:  # what a result weighs in a worker's memory, about
                largest = max(largest, len(pickle.dumps(outcome)))
        wall = time.perf_counter() - started
    return {"wall_s": wall, "run_s": run_s, "runs": runs, "failed": failed,
            "overhead_ms": (workers * wall - run_s) / max(1, runs) * 1000,
            "peak_tasks": peaks.peak_tasks, "peak_results": peaks.peak_results,
            "result_kb": largest / 1e3}


# ------------------------------------------------------------------ in the parent


def measure(tree: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), FRAGSIM_PURE_PYTHON="1")
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                          env=env, capture_output=True, text=True, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"bench child {args} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def unpack(revision: str, folder: Path) -> Path:
    tree = folder / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "sim", "workloads"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="also measure this git revision")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="planning repeats")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, config = args.child[0], args.child[1]
        result = child_plan(config) if kind == "plan" else child_dask(config, args.workers)
        print(json.dumps(result))
        return
    plan_points, run_points = (300, (50, 200)) if args.quick else (1000, (100, 1000))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        trees = {"this tree": REPO}
        if args.before:
            trees = {f"before ({args.before})": unpack(args.before, folder), **trees}
        config = planning_config(folder, plan_points)
        planning: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                planning[name].append(measure(tree, "plan", str(config))["wall_s"])
        dask: dict[tuple[str, int], dict] = {}
        for points in run_points:
            trivial = trivial_config(folder, points)
            for name, tree in trees.items():
                dask[name, points] = measure(tree, "dask", str(trivial))
        shutil.rmtree(folder / "unused", ignore_errors=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(f"planning {plan_points} points x 3 variants, median of {args.repeats} (min..max)\n")
    print("tree | plan wall (s)")
    print("--- | ---")
    for name, walls in planning.items():
        print(f"{name} | {statistics.median(walls):.2f} ({min(walls):.2f}..{max(walls):.2f})")
    print(f"\ndask, LocalCluster of {args.workers} single-threaded workers, trivial points\n")
    header = ("tree", "points", "map wall (s)", "run wall / point (ms)",
              "overhead / point (ms)", "peak tasks on the scheduler",
              "peak results held", "one result (kB pickled)")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for (name, points), r in dask.items():
        print(f"{name} | {points} | {r['wall_s']:.1f} | {r['run_s'] / max(1, r['runs']) * 1000:.0f}"
              f" | {r['overhead_ms']:.1f} | {r['peak_tasks']} | {r['peak_results']} | "
              f"{r['result_kb']:.0f}"
              + (f" ({r['failed']} failed)" if r["failed"] else ""))


if __name__ == "__main__":
    main()
