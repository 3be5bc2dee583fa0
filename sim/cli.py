"""The fragsim command line.

Each subcommand is a pair of small functions: ``add_<name>(subparsers)`` declares its
arguments and sets ``run`` to ``cmd_<name>(args) -> int``; COMMANDS lists the adders.
Bad input (FragsimError, an unreadable file) prints one line "fragsim: error: ..." on
stderr and exits with status 2, without a traceback.
"""

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from sim import __version__
from sim.errors import FragsimError
from sim.executors import Interrupted
from sim.procfs import format_extfrag_index, format_unusable_index, parse_buddyinfo

PROG = "fragsim"


def read_input(path: str) -> tuple[str, str]:
    """The text of a file, or of stdin for "-", with the name to use in messages."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except OSError as e:
        raise FragsimError(f"{path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise FragsimError(f"{path}: cannot read: not UTF-8 text ({e.reason})") from e


# --- fragsim extfrag ------------------------------------------------------------------

EXTFRAG_HELP = "print debugfs extfrag/unusable_index or extfrag_index for a buddyinfo"
EXTFRAG_DESCRIPTION = """\
Print, byte for byte, what debugfs extfrag/unusable_index (the default) or
extfrag/extfrag_index would print for the zones of a /proc/buddyinfo, computed as
mm/vmstat.c of Linux 6.18 computes them.

unusable_index: share of free memory that cannot serve an order-N allocation,
  0.000 (none) to 1.000 (all).
extfrag_index: why an order-N allocation would fail, 0.000 (lack of memory) to
  1.000 (fragmentation); -1.000 means it would succeed."""
EXTFRAG_EPILOG = """\
Example:
  fragsim extfrag tests/data/compaction/gupta-12g-keep1of4/2-freed.buddyinfo --index fragmentation
  cat /proc/buddyinfo | fragsim extfrag -"""


def add_extfrag(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extfrag",
        help=EXTFRAG_HELP,
        description=EXTFRAG_DESCRIPTION,
        epilog=EXTFRAG_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "buddyinfo", metavar="BUDDYINFO", help="a /proc/buddyinfo file, - for stdin"
    )
    parser.add_argument(
        "--index",
        choices=("unusable", "fragmentation"),
        default="unusable",
        help="unusable_index (default) or extfrag_index (fragmentation)",
    )
    parser.set_defaults(run=cmd_extfrag)


def cmd_extfrag(args: argparse.Namespace) -> int:
    text, source = read_input(args.buddyinfo)
    zones = parse_buddyinfo(text, source)
    if args.index == "unusable":
        sys.stdout.write(format_unusable_index(zones))
    else:
        sys.stdout.write(format_extfrag_index(zones))
    return 0


# --- fragsim run / validate / plot ---------------------------------------------------


def _add_set(parser: argparse.ArgumentParser,
             help_text: str = "override a config key, e.g. caches.dentry.mobility=move "
             "(repeatable)") -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=help_text)


def _add(subparsers, name: str, help_text: str, description: str, example: str):
    return subparsers.add_parser(
        name, help=help_text, description=description, epilog=f"Example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_run(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "run", "run an experiment (every variant x seed) and write its results",
        "Run one experiment from a YAML config. With variants: (e.g. defrag off/on) each\n"
        "variant runs with every seed and the plots compare them. Writes config.yaml,\n"
        "timeseries.csv, summary.json, final/{buddyinfo,pagetypeinfo,slabinfo}, memory\n"
        "maps and PNG plots to results/<name>/ (or --out), atomically.\n\n"
        "--real runs the same workloads on this machine's kernel instead, and records it\n"
        "as fragsim record does (docs/validate.md): anon, page_cache, fs_churn, thp_probe,\n"
        "fragment and compact_memory (as root) each run in a process of their own, paced\n"
        "by wall time, their files in a new directory inside --workdir DIR that is\n"
        "deleted at the end. A kind or a parameter without a real counterpart, a THP mode\n"
        "the machine's settings cannot give, or more memory than MemAvailable leaves (less\n"
        "1 GiB or 10 %) is refused before anything starts. The run lasts the config's\n"
        "duration; Ctrl-C stops the workloads, deletes their files and keeps what was\n"
        "recorded, marked incomplete (exit status 130).",
        "fragsim run configs/quickstart.yaml --set duration=30s --seeds 3\n"
        "  sudo fragsim run configs/real/small.yaml --real --workdir /var/tmp",
    )
    parser.add_argument("config", metavar="CONFIG", help="an experiment YAML file")
    _add_set(parser)
    parser.add_argument("--out", help="the run directory (default results/<name>)")
    parser.add_argument("--seed", type=int, help="the first seed (default: the config's)")
    parser.add_argument("--seeds", type=int, help="replicates per variant (default: the config's)")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="runs at a time, in worker processes (default 1); results "
                        "do not depend on it")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    parser.add_argument("--real", action="store_true",
                        help="run the workloads on this machine's kernel and record it")
    parser.add_argument("--workdir", metavar="DIR",
                        help="--real: where the workloads' files go (a new directory "
                        "inside DIR, deleted at the end)")
    parser.add_argument("--variant", metavar="NAME",
                        help="--real: the variant to run (a real run is one run)")
    parser.set_defaults(run=cmd_run)


class _RunBar:
    """One tqdm bar over every variant x seed of ``fragsim run``, in simulated seconds
    summed over the runs (so the ETA counts what is left of all of them), labelled with
    the run it last heard from: "run 3/10, defrag-on seed 2"."""

    def __init__(self) -> None:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: --jobs forks
        self._tqdm = tqdm
        self.bar = None

    def begin(self, runs: list[tuple[str, int, float]]) -> None:
        self.runs = runs
        self.reached = [0.0] * len(runs)
        total = sum(duration for _, _, duration in runs)
        self.bar = self._tqdm(total=round(total, 3), unit="sim s", leave=False, smoothing=0,
                              bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                              "[{elapsed}<{remaining}]")

    def update(self, index: int, t: float) -> None:
        variant, seed, duration = self.runs[index]
        self.reached[index] = min(max(self.reached[index], t), duration)
        self.bar.set_description_str(
            f"run {index + 1}/{len(self.runs)}, {variant} seed {seed}", refresh=False)
        self.bar.n = round(sum(self.reached), 3)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_run(args: argparse.Namespace) -> int:
    from sim.runner import run_experiment
    from workloads.base import WorkloadError

    if args.real or args.workdir is not None or args.variant is not None:
        return cmd_run_real(args)
    if args.seeds is not None and args.seeds < 1:
        raise FragsimError(f"--seeds: expected a number of at least 1, got {args.seeds}")
    if args.jobs < 1:
        raise FragsimError(f"--jobs: expected a number of at least 1, got {args.jobs}")
    bar = _RunBar() if sys.stderr.isatty() else None
    try:
        out = run_experiment(args.config, args.overrides, args.out, args.seed, args.seeds,
                             bar, plots=not args.no_plots, jobs=args.jobs)
    except WorkloadError as e:
        _print_error(str(e))
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(f"results in {out}/")
    _print_headline(out)
    return 0


def cmd_run_real(args: argparse.Namespace) -> int:
    """``fragsim run CONFIG --real --workdir DIR``: sim/realrun.py."""
    from sim.realrun import run_real

    if not args.real:
        option = "--workdir" if args.workdir is not None else "--variant"
        raise FragsimError(f"{option}: expected only with --real, got it without")
    if args.workdir is None:
        raise FragsimError("--real: expected --workdir DIR (where the workloads' files go), "
                           "got none")
    if args.seeds not in (None, 1):
        raise FragsimError(f"--seeds: expected 1 with --real (one run of the live kernel), "
                           f"got {args.seeds}")
    if args.jobs != 1:
        raise FragsimError(f"--jobs: expected 1 with --real (one run of the live kernel), "
                           f"got {args.jobs}")
    bar = None
    if sys.stderr.isatty():
        from sim.config import load_yaml

        duration = load_yaml(args.config).get("duration")
        bar = _RecordBar(_duration("duration", str(duration)) if duration else None,
                         f"`{args.config}`")

    def notify(line: str) -> None:
        print(f"{PROG}: {line}", file=sys.stderr)

    try:
        result = run_real(args.config, args.workdir, args.overrides, args.out, args.seed,
                          args.variant, plots=not args.no_plots,
                          progress=bar.update if bar is not None else None, notify=notify)
    finally:
        if bar is not None:
            bar.close()
    record, summary = result.record, result.summary
    print(f"real run of {args.config} on this kernel ({platform_release()}): results in "
          f"{result.out}/")
    cost = (f"; a sample took {record.sample_cost_mean_s * 1e3:.1f} ms on average"
            if record.samples else "")
    print(f"  {record.samples} samples over {record.duration_s:.1f} s, after a setup of "
          f"{result.setup_s:.1f} s{cost}")
    headline = []
    order = next((k[len("avail"):-len("_time_avg")] for k in summary
                  if k.startswith("avail") and k.endswith("_time_avg")), "9")
    if summary.get(f"avail{order}_time_avg") == summary.get(f"avail{order}_time_avg"):
        headline.append(f"time-avg avail[{order}] {summary[f'avail{order}_time_avg']:.1f}")
    if any(w["kind"] == "thp_probe" for w in summary["workloads"].values()):
        headline.append(f"THP probe {summary.get('thp_successes', 0)}/"
                        f"{summary.get('thp_attempts', 0)} succeeded")
    if headline:
        print("  " + ", ".join(headline))
    for name, report in summary["workloads"].items():
        print(f"  {name} ({report['kind']}): {report.get('headline', 'no report')}")
    if result.files_left:
        _print_error(f"could not delete {len(result.files_left)} of the workloads' files, "
                     f"first {result.files_left[0]}")
        return 1
    if record.signum is not None:
        _print_error(f"{_stopped(record.signum)}: stopped the workloads after "
                     f"{record.duration_s:.1f} s and deleted their files; what was recorded "
                     f"is in {result.out}/, marked incomplete")
        return 128 + record.signum
    if result.failure is not None:
        _print_error(f"{result.failure}: stopped the run after {record.duration_s:.1f} s; "
                     f"what was recorded is in {result.out}/, marked incomplete")
        return 1
    return 0


def platform_release() -> str:
    import platform

    return platform.release()


def _print_headline(out) -> None:
    """What the experiment is about, per variant: THP success and time-averaged avail[9]
    from ``measure_from`` on, with 95 % intervals (a rate's inside [0, 1]); for slab
    experiments the slab counts at the end and the pages the defragmenter returned. A
    replay directory (summary.json of kind "replay") prints its slab table."""
    import json
    import math
    import statistics
    from pathlib import Path

    import yaml

    from sim.runner import SLOW_PATH_NOTE_SHARE

    out = Path(out)
    summary = json.loads((out / "summary.json").read_text())
    try:
        config = yaml.safe_load((out / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    if summary.get("kind") == "replay":
        _print_replay_table(summary["variants"]["replay"]["runs"][0], config)
        return

    def number(value: float) -> str:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"

    def figure(data: dict, key: str) -> str | None:
        mean = data["mean"].get(key)
        if mean is None or mean != mean:
            return None
        low, high = data.get("interval95", {}).get(key, (math.nan, math.nan))
        if key.endswith("_rate"):
            spread = f" (95 % CI {low:.2f}-{high:.2f})" if low == low else ""
            return f"{mean:.2f}{spread}"
        half = data["ci95"].get(key)
        spread = f" +/- {number(half)}" if half is not None and half == half else ""
        return f"{number(mean)}{spread}"

    def labelled(data: dict, pairs) -> list[str]:
        """"LABEL figure" for each (key, label) the summary has."""
        return [f"{label} {text}" for key, label in pairs
                if (text := figure(data, key)) is not None]

    variants = config.get("variants") or {}
    starts = [run.get("measure_from_s") or 0 for data in summary["variants"].values()
              for run in data.get("runs", [])]
    asked = max((float((c or {}).get("measure_from") or 0) for c in variants.values()),
                default=0.0)
    if any(starts):
        start = max(starts)
        print(f"  from t = {start:g} s on (measure_from; the warm-up before it is left out "
              f"of the averages and THP success):")
    elif asked:  # a shortened run of a config with a warm-up
        print(f"  over the whole run: it ends before measure_from ({asked:g} s)")
    caches: list[str] = []
    slab_experiment = False
    for c in variants.values():
        for name, spec in ((c or {}).get("caches") or {}).items():
            if name not in caches:
                caches.append(name)
            slab_experiment |= (spec or {}).get("mobility", "none") != "none"
        slab_experiment |= bool(((c or {}).get("defrag") or {}).get("enabled"))
    for variant, data in summary["variants"].items():
        parts = labelled(data, (("thp_success_rate", "THP success"),
                                ("avail9_time_avg", "time-avg avail[9]")))
        n = data["n"]
        print(f"  {variant} ({n} seed{'s' * (n != 1)}): " + ", ".join(parts))
        runs = data["runs"]
        if slab_experiment and caches:
            counts = []
            for name in caches:
                slabs = [r["caches"][name]["num_slabs"] for r in runs
                         if name in r.get("caches", {})]
                if slabs:
                    counts.append(f"{name} {number(statistics.median(slabs))}")
            if counts:
                print(f"    slabs at the end (median): {', '.join(counts)}")
        if slab_experiment:
            extra = labelled(data, (("evictions.slab_objects", "slab objects evicted"),
                                    ("evictions.page_cache_pages",
                                     "page-cache pages evicted")))
            defrag_on = bool(((variants.get(variant) or {}).get("defrag") or {}).get("enabled"))
            total = figure(data, "defrag.pages_returned_total")
            if defrag_on and total is not None:
                during = data["mean"].get("defrag.pages_returned", math.nan)
                later = data["mean"].get("defrag.pages_returned_later", math.nan)
                print(f"    pages the defragmenter returned {total} ({number(during)} by its "
                      f"passes + at most {number(later)} later)")
            if extra:
                print(f"    {'; '.join(extra)}")
        share = data["mean"].get("slow_path_time_share")
        if share is not None and share == share and share > SLOW_PATH_NOTE_SHARE:
            entered = data["mean"].get("slow_path.share", math.nan)
            direct = data["mean"].get("slow_path.direct_reclaim_share", math.nan)
            print(f"  {variant}: note: the allocation slow path took {share:.0%} of the time "
                  f"({entered:.1%} of allocations entered it, {direct:.1%} reclaimed "
                  f"directly): the workload asks for memory faster than kswapd frees it "
                  f"(summary.json: slow_path)")
        errors = [e for run in runs for e in run.get("defrag", {}).get("errors", [])]
        if errors:  # a user's mobility callback raised: the run went on without it
            print(f"  {variant}: warning: {len(errors)} defrag callback error(s), first: "
                  f"{errors[0]} (summary.json: defrag.errors)", file=sys.stderr)


def _print_replay_table(summary: dict, config: dict, top: int = 5) -> None:
    """The README's replay table: slabs after the trace, after the defrag pass (when one
    ran) and the minimum the live objects need (ceil(live / objects per slab)), for the
    caches given a mobility, then the busiest by slabs allocated, ``top`` in all."""
    caches = summary.get("caches") or {}
    named = [n for n, spec in (config.get("caches") or {}).items()
             if n in caches and (spec or {}).get("mobility", "none") != "none"]
    busiest = sorted(caches, key=lambda n: -caches[n].get("slabs_allocated", 0))
    names = (named + [n for n in busiest if n not in named])[:max(top, len(named))]
    if not names:
        return
    defrag = "defrag" in summary
    rows = [("cache", "slabs after the trace") + (("after defrag",) if defrag else ())
            + ("minimum possible",)]
    for name in names:
        c = caches[name]
        slabs = c.get("nr_slabs", 0)
        per_slab = c.get("num_objs", 0) / slabs if slabs else 0
        live = c.get("live_objects", c.get("active_objs", 0))  # the trace's net count
        minimum = -(-live // round(per_slab)) if per_slab else 0
        rows.append((name, f"{slabs}") + ((f"{c.get('num_slabs_final', slabs)}",) if defrag
                                          else ()) + (f"{minimum}",))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    if defrag:
        d = summary["defrag"]
        total = d.get("pages_returned_total", d.get("pages_returned", 0))
        print(f"  the defrag pass: {d.get('objects_moved', 0)} objects moved, "
              f"{d.get('objects_evicted', 0)} evicted; {total} pages returned "
              f"({d.get('pages_returned', 0)} by the pass, "
              f"{d.get('pages_returned_later', 0)} after the RCU grace period)")


def add_validate(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "validate", "check a config and print its resolved form",
        "Validate a config (units, keys, ranges, workload parameters) and print it fully\n"
        "resolved, as a run would record it.",
        "fragsim validate configs/quickstart.yaml --set machine.memory=2GiB",
    )
    parser.add_argument("config", metavar="CONFIG")
    _add_set(parser)
    parser.set_defaults(run=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.runner import validate

    sys.stdout.write(validate(args.config, args.overrides))
    return 0


def add_plot(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "plot", "redraw the plots of a run, sweep or capacity directory",
        "Redraw every plot of a run directory from its timeseries.csv and memory maps, of\n"
        "a sweep directory from sweep.json, sweep.csv and points/, or capacity.png from\n"
        "capacity.json.",
        "fragsim plot results/quickstart",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.set_defaults(run=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sim.plots import plot_capacity, plot_run, plot_sweep

    path = Path(args.directory)
    if (path / "sweep.json").is_file() and (path / "sweep.csv").is_file():
        drawn = plot_sweep(path)
    elif (path / "capacity.json").is_file():
        drawn = [p for p in [plot_capacity(path)] if p is not None]
    elif (path / "timeseries.csv").is_file():
        drawn = plot_run(path)
    else:
        raise FragsimError(f"{path}: expected a run directory with timeseries.csv (or a sweep "
                           "with sweep.json, or capacity.json), got none")
    for figure in drawn:
        print(figure)
    return 0


# --- fragsim sweep / capacity ---------------------------------------------------------


def _add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="parallel runs (default: the number of CPUs; 1 runs in-process)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="local process pool (default) or dask.distributed "
                        "(pip install 'fragsim[cluster]')")
    parser.add_argument("--scheduler", metavar="ADDR",
                        help="a dask scheduler, e.g. tcp://10.0.0.5:8786 (default with "
                        "--executor dask: a LocalCluster of --jobs workers)")


def add_sweep(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "sweep", "run a parameter sweep (a sweep: section) and compare the points",
        "Run every point x seed of an experiment's sweep: section (grid: cartesian, zip:\n"
        "paired lists, points: explicit; seeds: replicates), each variant of the\n"
        "experiment at every point. Each point x seed is a run directory under points/;\n"
        "a rerun skips finished points (resume after an interruption) and runs again,\n"
        "saying how many, those made by another fragsim version or plug-in code; a\n"
        "point that crashes goes to failures.json and the others finish (exit status\n"
        "1). Writes sweep.csv (a row per point x seed x variant, with the version that\n"
        "made it), sweep.json and comparative plots. SIGTERM or Ctrl-C stops the\n"
        "workers too (exit status 143 or 130).",
        "fragsim sweep configs/sweeps/used_ratio_x_mobility.yaml --jobs 2",
    )
    parser.add_argument("config", metavar="CONFIG", help="an experiment YAML with sweep:")
    parser.add_argument("--out", help="the sweep directory (default results/<name>)")
    _add_executor_arguments(parser)
    parser.add_argument("--seeds", type=int, help="replicates per point (default: sweep.seeds)")
    _add_set(parser, "override a key at every point (repeatable)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    parser.set_defaults(run=cmd_sweep)


def _sweep_progress_factory():
    """A tqdm bar of points x seeds done, with an ETA, only on a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the process pool forks

    def factory(to_run: int, skipped: int):
        if skipped:
            print(f"resuming: {skipped} point x seed run(s) finished before", file=sys.stderr)
        bar = tqdm(total=to_run, desc="sweep", unit="run", leave=False,
                   bar_format="{desc}: {n}/{total} points x seeds |{bar}| "
                   "[{elapsed}<{remaining}]{postfix}")
        failed = 0

        def update(outcome) -> None:
            nonlocal failed
            if not outcome.ok:
                failed += 1
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.update(1)
            if bar.n >= to_run:
                bar.close()

        return update

    return factory


def cmd_sweep(args: argparse.Namespace) -> int:
    from sim.sweep import run_sweep

    try:
        report = run_sweep(args.config, args.overrides, args.out, args.jobs, args.executor,
                           args.scheduler, args.seeds, _sweep_progress_factory(),
                           plots=not args.no_plots,
                           notify=lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt as e:  # Ctrl-C; SIGTERM or SIGHUP (Interrupted)
        signum = _stop_signal(e)
        _print_error(f"{_stopped(signum)}: its workers are stopped and finished points are "
                     "kept; run the same command again to resume")
        return 128 + signum
    print(f"{report.total} point x seed runs: {report.ran} ran, {report.skipped} finished "
          f"before, {len(report.failures)} failed ({report.wall_s:.1f} s)")
    print(f"results in {report.out}/ (sweep.csv, {len(report.plots)} plots)")
    if report.failures:
        for failure in report.failures:
            _print_error(f"point {failure['point']} seed {failure['seed']} failed: "
                         f"{failure['error']}")
        _print_error(f"{len(report.failures)} run(s) failed; details in "
                     f"{report.out}/failures.json; a rerun retries them")
        return 1
    return 0


def add_capacity(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "capacity", "find the smallest value of a key that meets a target",
        "Find the smallest value of --vary (e.g. machine.memory) in --range that meets\n"
        "--target (a summary metric, mean over seeds), for each compared setting (the\n"
        "experiment's variants x --compare values). Brackets first (LO must fail, HI must\n"
        "pass, else it says so), then bisects to --step. Warns when pass/fail is not\n"
        "monotone on the probes run or when seeds disagree at a probe. Prints a table and\n"
        "the difference between settings; writes capacity.json and capacity.png. The\n"
        "options may also come from a capacity: section of the config. Exit status 1\n"
        "when a setting's answer lies outside the range.",
        'fragsim capacity configs/capacity/thp_memory.yaml --vary machine.memory '
        '--range 96MiB..512MiB --step 16MiB --target "thp_success_rate>=0.9" '
        '--compare defrag.enabled=false,true --seeds 3',
    )
    parser.add_argument("config", metavar="CONFIG", help="an experiment YAML")
    parser.add_argument("--vary", metavar="KEY", help="the key to size, e.g. machine.memory")
    parser.add_argument("--range", dest="range_text", metavar="LO..HI",
                        help="e.g. 256MiB..4GiB")
    parser.add_argument("--target", metavar='"METRIC OP VALUE"',
                        help="e.g. thp_success_rate>=0.9 (OP: >=, >, <=, <)")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=V1,V2",
                        help="settings to compare, e.g. defrag.enabled=false,true (repeatable)")
    parser.add_argument("--seeds", type=int, metavar="K", help="seeds per probe")
    parser.add_argument("--step", metavar="S", help="the resolution, e.g. 64MiB "
                        "(default: a sixteenth of the range)")
    parser.add_argument("--out", help="where to write (default results/<name>-capacity)")
    _add_set(parser, "override a config key (repeatable)")
    _add_executor_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    parser.set_defaults(run=cmd_capacity)


def cmd_capacity(args: argparse.Namespace) -> int:
    from sim.capacity import format_report, run_capacity

    bars = []
    factory = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the process pool forks

        def factory(most: int):
            bars.append(tqdm(total=most, desc="capacity probes (at most)", unit="run",
                             leave=False))
            return bars[0].update

    try:
        result = run_capacity(args.config, args.vary, args.range_text, args.target,
                              args.compare, args.seeds, args.step, args.overrides, args.out,
                              args.jobs, args.executor, args.scheduler, plots=not args.no_plots,
                              progress_factory=factory)
    except KeyboardInterrupt as e:
        signum = _stop_signal(e)
        _print_error(_stopped(signum))
        return 128 + signum
    finally:
        for bar in bars:
            bar.close()
    print(format_report(result))
    written = "capacity.json" + (", capacity.png" if result.plot else "")
    print(f"results in {result.out}/ ({written})")
    return 0 if all(a.status == "found" for a in result.answers) else 1


# --- fragsim replay -------------------------------------------------------------------

REPLAY_EXAMPLE = "configs/examples/tmpfs-churn-20k-keep10"
# Allocation failures a replay may have and still exit 0. Not 0: the replay allocates
# through the zone's fast path only (sim/replay.py), which refuses at the low watermark
# where the kernel would retry at the min watermark and compact, and its machine is
# rebuilt from snapshots that miss the per-CPU lists; a machine as full as the traced
# one may fail a handful near its watermarks. Each of those is one allocation of
# hundreds of thousands whose free is matched. More means the machine is not the one
# that was traced (the tens of thousands). --max-failures 0 is strict.
REPLAY_MAX_FAILURES = 10


def add_replay(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "replay", "replay an ftrace kmem trace on a machine built from /proc snapshots",
        "Replay kmem_cache_alloc/free, kmalloc/kfree and mm_page_alloc/free events of an\n"
        "ftrace text trace (plain, .gz or .xz) on slab caches built from a slabinfo and a\n"
        "zone built from a buddyinfo (with pagetypeinfo/zoneinfo when given). Writes the\n"
        "fragsim run layout; --set defrag.enabled=true --set caches.NAME.mobility=free|move\n"
        "adds one defragmentation pass after the trace, to show what it would have done;\n"
        "--set machine.memory=SIZE sizes the zone (other keys are refused).\n"
        "Lines that cannot be replayed as the kernel ran them (garbled, a timestamp that is\n"
        "not finite or goes back, an impossible size or order, a duplicated free) are\n"
        "skipped: the first ten are printed on stderr, all are counted in summary.json.\n"
        "Allocations the simulated machine cannot serve (its zone ran out) are counted by\n"
        "order, migratetype and cache; one line on stderr names the first one's trace line\n"
        "and the zone's free pages and watermarks then.\n"
        "Exit status 1 when the trace had bad lines or ended early, or more than\n"
        "--max-failures allocations failed (results are written), 2 on bad input.",
        f"fragsim replay {REPLAY_EXAMPLE}/trace.txt.xz --slabinfo {REPLAY_EXAMPLE}/before.slabinfo"
        f" --buddyinfo {REPLAY_EXAMPLE}/before.buddyinfo --set defrag.enabled=true "
        "--set caches.dentry.mobility=move",
    )
    parser.add_argument("trace", metavar="TRACE")
    parser.add_argument(
        "--from", dest="snapshot", metavar="DIR",
        help="a snapshot taken before the trace (fragsim snapshot DIR, or a PREFIX of "
             "PREFIX.buddyinfo, ...): its slabinfo, buddyinfo, pagetypeinfo and zoneinfo, "
             "every zone, as machine.from builds it")
    for name in ("slabinfo", "buddyinfo", "pagetypeinfo", "zoneinfo"):
        parser.add_argument(f"--{name}", help=f"a /proc/{name} captured before the trace")
    _add_set(parser, "defrag.*, caches.NAME.mobility and machine.memory keys")
    parser.add_argument("--speed", type=float, default=1.0, help="time scale (default 1)")
    parser.add_argument(
        "--max-failures", type=int, default=REPLAY_MAX_FAILURES, metavar="N",
        help=f"exit status 1 when more than N allocations fail (default "
             f"{REPLAY_MAX_FAILURES}; 0: any failure)")
    parser.add_argument("--out", help="the run directory (default results/replay-<trace>)")
    parser.add_argument("--no-plots", action="store_true")
    parser.set_defaults(run=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from sim.replay import describe_alloc_failure
    from sim.runner import run_replay

    if args.max_failures < 0:
        raise FragsimError(f"--max-failures: expected a number of at least 0, got "
                           f"{args.max_failures}")
    if args.snapshot is not None:
        from sim.snapshot import snapshot_paths

        files = snapshot_paths(args.snapshot)
        for name, file in files.items():
            if getattr(args, name) is not None:
                raise FragsimError(f"--{name}: expected it or --from, not both; got "
                                   f"--{name} {getattr(args, name)} and --from {args.snapshot}")
            if file.is_file():
                setattr(args, name, str(file))
            elif name in ("buddyinfo", "zoneinfo"):
                raise FragsimError(f"{file}: cannot read: no such file (--from needs a "
                                   f"snapshot's buddyinfo and zoneinfo)")
    out, summary = run_replay(
        args.trace, slabinfo=args.slabinfo, buddyinfo=args.buddyinfo,
        pagetypeinfo=args.pagetypeinfo, zoneinfo=args.zoneinfo, overrides=args.overrides,
        out=args.out, speed=args.speed, plots=not args.no_plots,
        max_failures=args.max_failures)
    trace = summary["trace"]
    failures = trace["alloc_failures"]
    failed = failures["total"]
    kinds = f" ({failures['pages']} pages, {failures['objects']} objects)" if failed else ""
    print(f"results in {out}/")
    print(f"  {trace['events']} events over {trace['span_s']:.3g} s of trace in "
          f"{summary['wall_s']:.3g} s ({summary['realtime_factor']:.2f}x real time); "
          f"{trace['bad_lines']} bad lines, {trace['unknown_frees']} unknown frees, "
          f"{failed} failed allocations{kinds}")
    _print_headline(out)  # the slab table: what the trace did and what defrag would do
    if trace["bad_lines"]:
        # One line each on stderr, as a compiler prints them: FILE:LINE: REASON: 'TEXT'.
        shown = trace["first_bad_lines"]
        more = f" (first {len(shown)} shown)" if trace["bad_lines"] > len(shown) else ""
        kinds = ", ".join(f"{n} {k}" for k, n in trace.get("bad_lines_by_kind", {}).items())
        print(f"{PROG}: {args.trace}: {trace['bad_lines']} bad line(s) skipped ({kinds})"
              f"{more}", file=sys.stderr)
        for bad in shown:
            print(f"{PROG}: {args.trace}:{bad['line']}: {bad['reason']}: {bad['text']!r}",
                  file=sys.stderr)
    too_many = failed > args.max_failures
    if failed:
        # One line: how many, and where the zone first ran out.
        verdict = "more than" if too_many else "within"
        print(f"{PROG}: {args.trace}: {failed} allocation{'s' if failed > 1 else ''} failed, "
              f"{verdict} --max-failures {args.max_failures}; first at "
              f"{describe_alloc_failure(failures['first'])}", file=sys.stderr)
    if not summary["complete"]:
        print(f"  incomplete: {trace['error']}")
        return 1
    return 1 if trace["bad_lines"] or too_many else 0


# --- fragsim config-reference ---------------------------------------------------------


def add_config_reference(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "config-reference", "print the config reference (docs/config.md)",
        "Print the reference of every config key (type and unit, default, allowed values,\n"
        "meaning) as Markdown, generated from the schema (sim/configdoc.py). With --check,\n"
        "print nothing and exit 1 with one line if FILE is not what it would print.",
        "fragsim config-reference > docs/config.md",
    )
    parser.add_argument("--check", nargs="?", const="docs/config.md", metavar="FILE",
                        help="compare with FILE (default docs/config.md) instead of printing")
    parser.set_defaults(run=cmd_config_reference)


def cmd_config_reference(args: argparse.Namespace) -> int:
    from sim.configdoc import config_reference

    text = config_reference()
    if args.check is None:
        sys.stdout.write(text)
        return 0
    regenerate = f"regenerate it: fragsim config-reference > {args.check}"
    try:
        with open(args.check, encoding="utf-8") as f:
            current = f.read()
    except (OSError, UnicodeDecodeError) as e:
        _print_error(f"{args.check}: cannot read: {getattr(e, 'strerror', None) or e}; "
                     f"{regenerate}")
        return 1
    if current != text:
        old, new = current.splitlines(), text.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                    min(len(old), len(new))) + 1
        _print_error(f"{args.check}:{line}: expected the config reference of the current "
                     f"schema, got an out-of-date one; {regenerate}")
        return 1
    return 0


def add_zones(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "zones", "print the zones of a machine built from /proc snapshots",
        "Build every zone of node 0 from a snapshot's buddyinfo, zoneinfo (managed pages,\n"
        "start pfns) and pagetypeinfo when present (sim/snapshot.py), and print the\n"
        "machine's /proc/buddyinfo and the head of each zone's /proc/zoneinfo entry\n"
        "(watermarks and protection from the kernel's formulas). SNAPSHOT is a directory\n"
        "holding buddyinfo, zoneinfo and pagetypeinfo, or a prefix of PREFIX.buddyinfo, ...\n"
        "A missing or inconsistent file is one error line naming it (exit status 2).",
        "fragsim zones tests/data/kmem-traces/tmpfs-churn-20k-keep10/before",
    )
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="a directory or a file prefix")
    parser.set_defaults(run=cmd_zones)


def cmd_zones(args: argparse.Namespace) -> int:
    from sim.procfs import buddyinfo_of, format_buddyinfo, format_zoneinfo_zone
    from sim.snapshot import node_from_snapshot_dir

    node = node_from_snapshot_dir(args.snapshot)
    zones = list(reversed(node.zonelist))  # DMA first, as /proc prints them
    sys.stdout.write(format_buddyinfo([buddyinfo_of(z, node.node_id, node.zone_name(z))
                                       for z in zones]))
    for zone in zones:
        sys.stdout.write(format_zoneinfo_zone(zone, node.node_id, node.zone_name(zone),
                                              zone.lowmem_reserve))
    return 0


# --- fragsim snapshot ------------------------------------------------------------------


def add_snapshot(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "snapshot", "copy this machine's memory state (/proc, debugfs) to DIR",
        "Copy what the running kernel says about its memory into a new directory:\n"
        "/proc/{buddyinfo,pagetypeinfo,zoneinfo,slabinfo,meminfo,vmstat}, the vm sysctls\n"
        "that set watermarks and compaction, the THP settings and, as root, debugfs\n"
        "extfrag/{unusable_index,extfrag_index} (debugfs is mounted for the read if it\n"
        "is not). pagetypeinfo and slabinfo are root-only: without root they are\n"
        "skipped and snapshot.json says so. DIR must not exist or be empty.",
        "sudo fragsim snapshot snapshots/$(hostname)-$(date +%F)",
    )
    parser.add_argument("out", metavar="DIR", help="a new (or empty) directory")
    parser.set_defaults(run=cmd_snapshot)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from sim.livekernel import take_snapshot

    report = take_snapshot(args.out)
    print(f"snapshot in {args.out}/: {len(report.taken)} files")
    for name, why in report.skipped.items():
        print(f"  skipped {name}: {why}")
    return 0


# --- fragsim record / compare --------------------------------------------------------


def _duration(option: str, text: str | None, zero: bool = False) -> float | None:
    """Seconds from a duration option (``250ms``, ``1min``): positive, or 0 too."""
    from sim.units import parse_duration

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise FragsimError(f"{option}: {e}") from None
    if not (seconds > 0 or (zero and seconds == 0)):
        raise FragsimError(f"{option}: expected a positive duration such as 1s or 250ms, "
                           f"got {text!r}")
    return seconds


def _record_limit() -> str:
    from sim.record import DEFAULT_LIMIT_S
    from sim.units import format_duration

    return format_duration(DEFAULT_LIMIT_S)


def add_record(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "record", "sample the live kernel while a command runs, as a run's result",
        "Sample this machine's memory every --every while COMMAND runs (until it exits;\n"
        "its exit status becomes fragsim's) or for --duration T, and write OUT in a run's\n"
        "layout with a run's series names (docs/results.md): timeseries.csv (variant\n"
        "real) of buddyinfo, avail, the extfrag indices, pageblocks by type, slab caches\n"
        "and vmstat counters, per zone and machine-wide; summary.json; start/ and final/\n"
        "(as fragsim snapshot writes them); config.yaml with the kernel release, vm\n"
        "sysctls, THP settings and the command. Without root, pagetypeinfo and slabinfo\n"
        "are skipped and a line says so. With a command, --duration is a time limit:\n"
        f"the command is stopped then (without it, after {_record_limit()}). Ctrl-C stops\n"
        "the command's process group and writes what was recorded, marked incomplete\n"
        "(exit status 130). `fragsim plot OUT` and `fragsim compare` read it.",
        "sudo fragsim record results/real-dd --every 500ms -- dd if=/dev/zero of=big "
        "bs=1M count=4096",
    )
    parser.add_argument("out", metavar="OUT", help="the result directory")
    parser.add_argument("--every", default="1s", metavar="T",
                        help="time between samples (default 1s)")
    parser.add_argument("--duration", metavar="T",
                        help="how long to record; with a command, at most this long")
    parser.add_argument("--slab-min-pages", type=int, default=64, metavar="N",
                        help="record the slab caches that hold N pages at some sample "
                        "(default 64; 0: every cache)")
    # The command is everything after "--", split off by main() (argparse would take
    # the command's own options for fragsim's).
    parser.usage = ("fragsim record [-h] [--every T] [--duration T] [--slab-min-pages N] OUT "
                    "[-- COMMAND ...]")
    parser.set_defaults(run=cmd_record, command=[], takes_command=True)


class _RecordBar:
    """A tqdm line while recording: elapsed time (of --duration when it is the end),
    samples, avail[9] and what a sample costs."""

    def __init__(self, total: float | None, what: str) -> None:
        from tqdm import tqdm

        tqdm.monitor_interval = 0
        fmt = ("{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s{postfix}" if total
               else "{desc}: {n:.1f} s{postfix}")
        self.total = total
        what = what if len(what) <= 40 else what[:38] + "...`"
        self.bar = tqdm(total=total, leave=False, bar_format=fmt, desc=f"recording {what}")

    def update(self, t: float, samples: int, values: dict, cost_s: float) -> None:
        avail = values.get(("avail", "9"))
        shown = f", avail[9] {avail:.0f}" if avail is not None else ""
        self.bar.set_postfix_str(f"{samples} sample{'s' * (samples != 1)}{shown}, "
                                 f"{cost_s * 1e3:.1f} ms a sample", refresh=False)
        self.bar.n = min(t, self.total) if self.total else t
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def cmd_record(args: argparse.Namespace) -> int:
    import shlex

    from sim.record import record

    command = list(args.command)
    every = _duration("--every", args.every)
    duration = _duration("--duration", args.duration)
    what = f"`{shlex.join(command)}`" if command else "the kernel"
    bar = _RecordBar(duration, what) if sys.stderr.isatty() else None
    try:
        result = record(args.out, command or None, every, duration,
                        slab_min_pages=args.slab_min_pages,
                        progress=bar.update if bar is not None else None,
                        notify=lambda line: print(f"{PROG}: {line}", file=sys.stderr))
    finally:
        if bar is not None:
            bar.close()
    cost = (f" (a sample took {result.sample_cost_mean_s * 1e3:.1f} ms on average, "
            f"{result.sample_cost_max_s * 1e3:.1f} ms at most)")
    print(f"recorded {result.samples} samples over {result.duration_s:.1f} s in "
          f"{result.out}/{cost}")
    summary = result.summary
    headline = []
    if "avail9_time_avg" in summary:
        headline.append(f"time-avg avail[9] {summary['avail9_time_avg']:.1f}")
    if summary.get("thp_attempts"):
        headline.append(f"THP faults {summary['thp_successes']}/{summary['thp_attempts']} "
                        "succeeded")
    vmstat = summary.get("vmstat", {})
    for name, label in (("pgsteal_kswapd", "kswapd reclaimed"),
                        ("pgsteal_direct", "direct reclaim took"),
                        ("compact_stall", "compaction stalls")):
        if name in vmstat:
            headline.append(f"{label} {vmstat[name]:,}" + (" pages" if "pgsteal" in name
                                                            else ""))
    if headline:
        print("  " + ", ".join(headline))
    if result.signum is not None:
        _print_error(f"{_stopped(result.signum)}: stopped the recording after "
                     f"{result.duration_s:.1f} s" + (f" and {what}" if command else "")
                     + f"; what was recorded is in {result.out}/, marked incomplete")
        return 128 + result.signum
    if result.stopped_by == "limit":
        _print_error(f"{what} still ran after {_record_limit()} (give --duration for a "
                     f"longer recording): stopped it; {result.out}/ is marked incomplete")
        return 1
    if command and result.stopped_by == "duration":
        print(f"  {what} still ran at --duration {args.duration}: stopped it")
        return 0
    if command:
        print(f"  {what} exited with status {result.command_status}")
        return result.command_status or 0
    return 0


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "compare", "lay result directories (real or simulated) side by side",
        "Read two or more result directories (fragsim record or fragsim run), align them\n"
        "on time (linear interpolation on a common grid over the time they share) and\n"
        "draw compare.png: avail[9] per zone, THP success over a trailing window,\n"
        "pageblocks by type, slab caches and the cumulative reclaim and compaction\n"
        "counters. compare.json has, for every series all of them have (metric/key), each\n"
        "run's mean absolute error over time, largest error, error of the time average\n"
        "and error at the end against the first run (the reference), absolute and\n"
        "relative. RUN is DIR or DIR:VARIANT (default: --variant, else the first);\n"
        "seeds are averaged. A tolerance NAME[:STAT]=LIMIT bounds an error: NAME is\n"
        "metric or metric/key (avail/Normal/9), STAT is mae (default), max, mean or end,\n"
        "LIMIT a number in the metric's unit or N% of the reference. Exit status 1 when\n"
        "one is exceeded (each named on stderr), 2 on bad input.",
        "fragsim compare results/real-fileserver results/twin --tolerance "
        "avail/Normal/9:mean=20% --tolerance thp_success_rate=0.1",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="result directories, the "
                        "first the reference")
    parser.add_argument("--out", help="where to write compare.png and compare.json "
                        "(default results/compare-A-vs-B)")
    parser.add_argument("--variant", help="the variant of a run with several (default: "
                        "its first)")
    parser.add_argument("--tolerance", action="append", default=[],
                        metavar="NAME[:STAT]=LIMIT", help="e.g. avail/Normal/9=20%% or "
                        "thp_success_rate=0.1 (repeatable)")
    parser.add_argument("--tolerance-file", metavar="F",
                        help="a YAML mapping of NAME[:STAT] to LIMIT")
    parser.add_argument("--thp-window", default="30s", metavar="T",
                        help="THP success over the attempts of the last T (default 30s)")
    parser.add_argument("--from", dest="start", metavar="T",
                        help="compare from time T on (e.g. after a warm-up; default: the "
                        "latest start)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    parser.set_defaults(run=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from sim.compare import compare, format_table, load_tolerances

    tolerances = load_tolerances(args.tolerance, args.tolerance_file)
    window = _duration("--thp-window", args.thp_window)
    start = _duration("--from", args.start, zero=True) or 0.0
    report = compare(args.runs, out=args.out, variant=args.variant, tolerances=tolerances,
                     thp_window=window, plots=not args.no_plots, start=start)
    sys.stdout.write(format_table(report))
    print(f"results in {report['out']}/ (compare.json"
          + (", compare.png)" if report.get("plot") else ")"))
    for violation in report["violations"]:
        _print_error(violation)
    return 1 if report["violations"] else 0


# --- wiring ---------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_run, add_replay, add_sweep, add_capacity, add_validate, add_plot, add_extfrag,
    add_snapshot, add_record, add_compare, add_zones, add_config_reference]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Discrete-event simulator of Linux physical memory fragmentation.",
        epilog=(
            "Example:\n"
            f"  {PROG} run configs/quickstart.yaml\n\n"
            f"Run '{PROG} COMMAND --help' for a command's options and an example."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


EXIT_NO_SPACE = 3  # a result could not be written: the disk or the quota is full
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 0 ok, 1 a run or some sweep points failed,
    2 bad input or usage, 3 no space left to write results, 128 + N stopped by signal N
    (130 Ctrl-C, 143 SIGTERM)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(parser, argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse has printed them
        return e.code if isinstance(e.code, int) else 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return args.run(args)
    except FragsimError as e:
        _print_error(str(e))
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (_terminated)
        signum = _stop_signal(e)
        _print_error(f"{_stopped(signum)}: nothing incomplete was written; an earlier result "
                     "in the same place is untouched")
        return 128 + signum
    except OSError as e:
        message = f"{e.filename}: {e.strerror}" if e.filename else str(e)
        if e.errno in NO_SPACE_ERRNOS:  # the machine's problem, not the input's
            _print_error(f"{message} (nothing incomplete was kept)")
            return EXIT_NO_SPACE
        _print_error(message)  # a file a command opened itself, not through read_input
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments; for a command that runs one (``record OUT -- COMMAND ...``),
    everything after the first "--" is that command, untouched."""
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if getattr(args, "takes_command", False):
            args.command = argv[cut + 1:]
            return args
    return parser.parse_args(argv)


def _terminated(signum, frame) -> None:
    """SIGTERM, raised where the process is, so the same clean-up as Ctrl-C runs (an
    executor's workers stopped, a partial directory removed)."""
    raise Interrupted(signum)


def _stop_signal(error: KeyboardInterrupt) -> int:
    """The signal that stopped a command: SIGINT for Ctrl-C, else Interrupted's."""
    return getattr(error, "signum", signal.SIGINT)


def _stopped(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else \
        f"terminated by {signal.Signals(signum).name}"


def _print_error(message: str) -> None:
    # One line, whatever the message holds, so that scripts can grep it.
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
