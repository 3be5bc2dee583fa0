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


# --- wiring ---------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_extfrag]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Discrete-event simulator of Linux physical memory fragmentation.",
        epilog=(
            "Example:\n"
            f"  {PROG} extfrag tests/data/compaction/gupta-12g-keep1of4/2-freed.buddyinfo\n\n"
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
