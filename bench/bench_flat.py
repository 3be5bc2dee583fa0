"""Do long runs stay flat? CPU time and memory per simulated second over one long run.

Issue 20 item 3: for a stationary workload, the cost of a simulated second and the
memory a run holds must not grow with simulated time. This runs one config (one
variant, one seed) in this process and, at every sample, takes the process's CPU time
(``time.process_time``) and its resident set (``/proc/self/statm``, the current RSS,
not the peak). It prints, per window of simulated time, the CPU seconds per simulated
second and the RSS at the window's end, then the ratio of the last window's cost to the
first steady window's and the RSS growth per simulated second over the steady part.

    python bench/bench_flat.py configs/file_server_steady.yaml --set duration=300s
    python bench/bench_flat.py configs/file_server_steady.yaml --windows 6 --skip 60

``--skip`` leaves out the fill (the first simulated seconds, until memory is full);
``--json`` writes the measurements. No figure here is a test: timing is noisy on a
shared machine, so compare runs made side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.experiment import load_config  # noqa: E402
from sim.runner import run_machine  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The current resident set of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def measure(config_path: str, overrides: list[str], variant: str | None) -> dict:
    config = load_config(config_path, overrides, variant)
    points: list[tuple[float, float, int]] = []

    def progress(t: float) -> None:
        points.append((t, time.process_time(), rss_bytes()))

    cpu0 = time.process_time()
    result = run_machine(config, config.seed, variant or "default", progress)
    return {"config": str(config_path), "overrides": overrides,
            "duration_s": config.duration, "cpu_s": time.process_time() - cpu0,
            "points": points, "alloc_ops": result.summary.get("alloc_ops"),
            "peak_rss_bytes": result.summary.get("peak_rss_bytes")}


def windows(points: list[tuple[float, float, int]], skip: float, n: int) -> list[dict]:
    """CPU per simulated second and RSS over ``n`` equal windows after ``skip``."""
    steady = [p for p in points if p[0] >= skip - 1e-9]
    if len(steady) < n + 1:
        raise SystemExit(f"bench_flat: {len(steady)} samples after --skip {skip:g}: "
                         f"expected at least {n + 1} (shorter --skip or more samples)")
    t0, t1 = steady[0][0], steady[-1][0]
    out = []
    edges = [t0 + (t1 - t0) * i / n for i in range(n + 1)]
    for a, b in zip(edges, edges[1:], strict=False):
        first = min(steady, key=lambda p: abs(p[0] - a))
        last = min(steady, key=lambda p: abs(p[0] - b))
        span = last[0] - first[0]
        out.append({"from_s": first[0], "to_s": last[0],
                    "cpu_per_sim_s": (last[1] - first[1]) / span if span else float("nan"),
                    "rss_mib": last[2] / 2**20})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python bench/bench_flat.py configs/file_server_steady.yaml "
               "--set duration=300s --skip 30",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--variant")
    parser.add_argument("--skip", type=float, default=30.0,
                        help="simulated seconds of fill left out (default 30)")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    m = measure(args.config, args.set, args.variant)
    rows = windows(m["points"], args.skip, args.windows)
    print(f"{args.config} {' '.join(args.set)}: {m['duration_s']:g} simulated s in "
          f"{m['cpu_s']:.1f} CPU s, {m['alloc_ops']} buddy ops, peak RSS "
          f"{m['peak_rss_bytes'] / 2**20:.0f} MiB")
    print(f"{'window (sim s)':>16}  {'CPU s / sim s':>13}  {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['from_s']:7.0f}-{r['to_s']:<7.0f}  {r['cpu_per_sim_s']:13.3f}  "
              f"{r['rss_mib']:8.0f}")
    span = rows[-1]["to_s"] - rows[0]["from_s"]
    first_rss = next(p[2] for p in m["points"] if p[0] >= rows[0]["from_s"] - 1e-9)
    growth = (rows[-1]["rss_mib"] - first_rss / 2**20) / span if span else float("nan")
    ratio = rows[-1]["cpu_per_sim_s"] / rows[0]["cpu_per_sim_s"]
    print(f"last window / first: {ratio:.2f}x CPU; RSS {growth:+.2f} MiB per simulated s")
    m["windows"], m["cpu_ratio"], m["rss_mib_per_sim_s"] = rows, ratio, growth
    if args.json:
        args.json.write_text(json.dumps(m, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
