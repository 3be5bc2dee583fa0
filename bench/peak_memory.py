"""What holds a run's memory at its peak: bench/bench64.py under memray, its heap at the
high-water mark sorted into the model's parts, in MiB and bytes a simulated page.

Issue 20 asks for <= 16 bytes a page in all; peak RSS alone (bench64.py prints it) says
how far off a run is, not where the bytes are. This runs ``memray run --native
--trace-python-allocators`` on bench64.py with the same arguments, reads the allocations
live at the peak
(``FileReader.get_high_watermark_allocation_records``) and puts each in one part by its
Python and native stacks (``PARTS``, first match wins). An allocation no part claims is
"the rest", and its largest sites are listed, so that a new holder is seen rather than
hidden.

Of the compiled build: some parts are told by mypyc's names of the functions that
allocated (``CPyDef_...``), which a pure-Python run does not have.

Every object pymalloc hands out is traced (``--trace-python-allocators``). Without it
memray sees pymalloc's 1 MiB arenas, each charged to whatever first needed one: a
256 GiB run then put 55 MiB on the page-cache reader's random draws (256 words at a
time, freed at once), arenas that File objects and slab vectors filled after them, and
some parts were off by half. Traced, the capture is about 0.7 GB at 256 GiB (in a
temporary directory unless ``--keep``) and reading it takes about 4 minutes.

memray is not one of fragsim's dependencies: ``pip install memray`` first (it runs on
Linux and macOS). The run under memray takes about 3x its time alone.

    python bench/peak_memory.py --settle 10 --steady 10          # 64 GiB, about 2 min
    python bench/peak_memory.py --set machine.memory=256GiB --settle 10 --steady 10
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (part, Python function or file at the top of the Python stack, native frame names): an
# allocation belongs to the first part whose Python marker is in its top Python frame
# ("file.py:function") or one of whose native markers is among its native frames.
PARTS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("the zones' per-pfn vectors (the link words, state, owner)",
     ("snapshot.py:synthesize_zone", "snapshot.py:plan_layout"), ("Node____share_links",)),
    ("the shared page index (one i32 a pfn)", ("machine.py:page_index",), ()),
    # outside a machine, the file systems and the LRU keep vectors of their own
    ("the file systems' own page slot (one i32 a pfn each)", (),
     ("FileSystem____page_cache_grow",)),
    ("the file LRU's own position (one i32 a pfn)", (), ("FileLru____grow",)),
    ("fs_churn's files and their slab objects", ("fs_churn.py:",),
     ("objloop___create_files", "objloop___unlink_files")),
    ("the page cache's LRU queue, folio tables and XArray nodes", ("page_cache.py:",), ()),
    ("the anonymous and kernel workloads", ("synthetic.py:", "pageset.py:"), ()),
    ("the import of modules (code, pydantic schemas)", ("<frozen importlib",), ()),
]
REST = "the rest"


def part_of(python_top: str, native: list[str]) -> str:
    """The part an allocation belongs to (``PARTS``), or ``REST``."""
    for name, python_markers, native_markers in PARTS:
        if any(m in python_top for m in python_markers):
            return name
        if any(m in frame for m in native_markers for frame in native):
            return name
    return REST


def analyse(capture: Path, pages: int, rest_sites: int = 6) -> dict:
    """Sort the peak's allocations of a memray capture into ``PARTS``."""
    from memray import FileReader

    reader = FileReader(capture)
    by_part: collections.Counter[str] = collections.Counter()
    rest: collections.Counter[str] = collections.Counter()
    for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
        stack = rec.stack_trace()
        top = f"{Path(stack[0][1]).name}:{stack[0][0]}" if stack else "?"
        native = [str(frame[0]) for frame in rec.native_stack_trace()[:16]]
        part = part_of(top, native)
        by_part[part] += rec.size
        if part == REST:
            rest[top] += rec.size
    total = sum(by_part.values())
    return {"pages": pages, "heap_bytes": total,
            "parts": [{"part": p, "bytes": b, "bytes_per_page": b / pages}
                      for p, b in by_part.most_common()],
            "rest_sites": [{"site": s, "bytes": b} for s, b in rest.most_common(rest_sites)]}


def report(result: dict) -> str:
    pages = result["pages"]
    lines = [f"heap at the peak, {pages} pages:"]
    for row in result["parts"]:
        lines.append(f"  {row['bytes'] / 2**20:8.0f} MiB {row['bytes_per_page']:6.1f} B/page"
                     f"  {row['part']}")
    total = result["heap_bytes"]
    lines.append(f"  {total / 2**20:8.0f} MiB {total / pages:6.1f} B/page  in all")
    if result["rest_sites"]:
        lines.append("the rest's largest sites:")
        for row in result["rest_sites"]:
            lines.append(f"  {row['bytes'] / 2**20:8.1f} MiB  {row['site']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python bench/peak_memory.py --set machine.memory=256GiB "
               "--settle 10 --steady 10\n(the options are bench/bench64.py's)")
    ap.add_argument("--json", type=Path, help="also write the parts here")
    ap.add_argument("--keep", type=Path, help="keep memray's capture at this path")
    args, bench_args = ap.parse_known_args(argv)
    try:
        import memray  # noqa: F401
    except ImportError:
        print("bench/peak_memory.py: needs memray, which fragsim does not install: "
              "pip install memray", file=sys.stderr)
        return 2
    if args.keep is not None and args.keep.exists():
        print(f"--keep: expected a path that does not exist, got {args.keep}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        capture = args.keep or Path(tmp) / "capture.bin"
        record = Path(tmp) / "bench64.json"
        cmd = [sys.executable, "-m", "memray", "run", "--native", "--trace-python-allocators",
               "-q", "-o", str(capture),
               str(REPO / "bench" / "bench64.py"), "--json", str(record), *bench_args]
        done = subprocess.run(cmd)
        if done.returncode != 0:
            print(f"bench64.py under memray failed (exit status {done.returncode})",
                  file=sys.stderr)
            return done.returncode or 1
        pages = json.loads(record.read_text())["record"]["pages"]
        result = analyse(capture, pages)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
