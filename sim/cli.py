"""The fragsim command line.

Each subcommand is a pair of small functions: ``add_<name>(subparsers)`` declares its
arguments and sets ``run`` to ``cmd_<name>(args) -> int``; COMMANDS lists the adders.
Bad input (FragsimError, an unreadable file) prints one line "fragsim: error: ..." on
stderr and exits with status 2, without a traceback.
"""

import argparse
import sys
from collections.abc import Callable, Sequence

from sim import __version__
from sim.errors import FragsimError
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
        "maps and PNG plots to results/<name>/ (or --out), atomically.",
        "fragsim run configs/quickstart.yaml --set duration=30s --seeds 3",
    )
    parser.add_argument("config", metavar="CONFIG", help="an experiment YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. "
                        "caches.dentry.mobility=move (repeatable)")
    parser.add_argument("--out", help="the run directory (default results/<name>)")
    parser.add_argument("--seed", type=int, help="the first seed (default: the config's)")
    parser.add_argument("--seeds", type=int, help="replicates per variant (default: the config's)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    parser.set_defaults(run=cmd_run)


def _progress_factory():
    """A tqdm bar in simulated seconds per variant x seed, only on a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    def factory(duration: float, label: str):
        bar = tqdm(total=round(duration, 3), desc=label, unit="sim s", leave=False,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} sim s "
                   "[{elapsed}<{remaining}]")

        def update(t: float) -> None:
            bar.n = round(t, 3)
            bar.refresh()
            if t >= duration:
                bar.close()

        return update

    return factory


def cmd_run(args: argparse.Namespace) -> int:
    from sim.runner import run_experiment
    from workloads.base import WorkloadError

    if args.seeds is not None and args.seeds < 1:
        raise FragsimError(f"--seeds: expected a number of at least 1, got {args.seeds}")
    try:
        out = run_experiment(args.config, args.overrides, args.out, args.seed, args.seeds,
                             _progress_factory(), plots=not args.no_plots)
    except WorkloadError as e:
        _print_error(str(e))
        return 1
    print(f"results in {out}/")
    _print_headline(out)
    return 0


def _print_headline(out) -> None:
    import json

    summary = json.loads((out / "summary.json").read_text())
    for variant, data in summary["variants"].items():
        mean, ci = data["mean"], data["ci95"]
        parts = []
        for key, label in (("avail9_time_avg", "time-avg avail[9]"),
                           ("thp_success_rate", "THP success")):
            if key in mean:
                half = ci.get(key)
                spread = f" +/- {half:.3g}" if half == half and half is not None else ""
                parts.append(f"{label} {mean[key]:.3g}{spread}")
        parts.append(f"{data['n']} seed(s)")
        print(f"  {variant}: " + ", ".join(parts))


def add_validate(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "validate", "check a config and print its resolved form",
        "Validate a config (units, keys, ranges, workload parameters) and print it fully\n"
        "resolved, as a run would record it.",
        "fragsim validate configs/quickstart.yaml --set machine.memory=2GiB",
    )
    parser.add_argument("config", metavar="CONFIG")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.set_defaults(run=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.runner import validate

    sys.stdout.write(validate(args.config, args.overrides))
    return 0


def add_plot(subparsers: argparse._SubParsersAction) -> None:
    parser = _add(
        subparsers, "plot", "redraw the plots of a run directory from its files",
        "Redraw every plot of a run directory from its timeseries.csv and memory maps.",
        "fragsim plot results/quickstart",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.set_defaults(run=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sim.plots import plot_run

    path = Path(args.directory)
    if not (path / "timeseries.csv").is_file():
        raise FragsimError(f"{path}: expected a run directory with timeseries.csv, got none")
    for drawn in plot_run(path):
        print(drawn)
    return 0


# --- wiring ---------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_run, add_validate, add_plot, add_extfrag]


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input or usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse has printed them
        return e.code if isinstance(e.code, int) else 2
    try:
        return args.run(args)
    except FragsimError as e:
        _print_error(str(e))
        return e.exit_code
    except OSError as e:  # a file a command opened itself, not through read_input
        _print_error(f"{e.filename}: {e.strerror}" if e.filename else str(e))
        return 2


def _print_error(message: str) -> None:
    # One line, whatever the message holds, so that scripts can grep it.
    print(f"{PROG}: error: {' '.join(message.splitlines())}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
