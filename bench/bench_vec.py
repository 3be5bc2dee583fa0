"""Per-element access to per-page arrays, compiled with mypyc: the measurement behind
the choice of ``librt.vecs`` for the zone's page state (docs/performance.md).

One loop, compiled by mypyc as fragsim's modules are, reads and writes one element at
each of 2 M random indices of an array of 1 Mi entries (4 MiB: the cost of access
itself, mostly in cache), once per container type fragsim used or could use: the
``array('i')`` and the strided ``memoryview`` the zone kept before, a ``list`` of
ints, and ``librt.vecs`` ``vec[i32]`` and ``vec[u8]``. A second loop follows links
(``p = next[p]``) through a random permutation, as a free-list walk does. The same
loops run interpreted, as the pure-Python build does. Reported: nanoseconds per
element operation, the median of ``--repeat`` runs, CPU time.

mypyc is not installed beside fragsim (pip compiles in an isolated environment), so
this needs ``pip install 'mypy>=2.4'`` in the venv first; without it, it says so and
exits 0.

    python bench/bench_vec.py
    python bench/bench_vec.py --repeat 7
"""

from __future__ import annotations

import argparse
import importlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One walk and one chase kernel per container type, from these templates: the same
# loop, typed for each container, so that mypyc compiles each access natively.
_WALK = """
def walk_{name}(a: {ann}, idx: list[int]) -> int:
    s = 0
    for i in idx:
        v = {read}
        a[i] = {write}
        s += v
    return s
"""
_CHASE = """
def chase_{name}(a: {ann}, start: int, n: int) -> int:
    p = start
    for _ in range(n):
        p = {read}
    return p
"""
_TYPES = {  # name: (annotation, element read, value written back)
    "array": ("array", "a[i]", "v + 1"),
    "memoryview": ("memoryview", "a[i]", "(v + 1) & 255"),
    "list": ("list[int]", "a[i]", "v + 1"),
    "vec_i32": ("vec[i32]", "int(a[i])", "v + 1"),
    "vec_u8": ("vec[u8]", "int(a[i])", "(v + 1) & 255"),
}
KERNELS = "\n".join(
    ["from array import array", "from mypy_extensions import i32, u8",
     "from librt.vecs import vec"]
    + [_WALK.format(name=name, ann=ann, read=read, write=write)
       for name, (ann, read, write) in _TYPES.items()]
    + [_CHASE.format(name=name, ann=_TYPES[name][0],
                     read=_TYPES[name][1].replace("[i]", "[p]"))
       for name in ("array", "list", "vec_i32")])


def build(tmp: Path) -> object | None:
    """The kernels compiled with mypyc in ``tmp``, or None when mypyc is missing."""
    mypyc = shutil.which("mypyc", path=str(Path(sys.executable).parent))
    if mypyc is None:
        return None
    (tmp / "vec_kernels.py").write_text(KERNELS)
    subprocess.run([mypyc, "vec_kernels.py"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.path.insert(0, str(tmp))
    try:
        module = importlib.import_module("vec_kernels")
    finally:
        sys.path.pop(0)
    if not module.__file__.endswith(".so"):
        raise SystemExit("bench_vec: mypyc ran but the module was not compiled")
    return module


def interpreted(tmp: Path) -> object:
    (tmp / "vec_kernels_py.py").write_text(KERNELS)
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("vec_kernels_py")
    finally:
        sys.path.pop(0)


def measure(k: object, repeat: int, n: int = 1 << 20, ops: int = 2_000_000) -> dict:
    from array import array

    from librt.vecs import vec
    from mypy_extensions import i32, u8

    rng = random.Random(1)
    idx = [rng.randrange(n) for _ in range(ops)]
    perm = list(range(n))
    rng.shuffle(perm)
    cases = {
        "walk array('i')": (k.walk_array, lambda: array("i", [0]) * n, idx),
        "walk memoryview (strided)": (
            k.walk_memoryview, lambda: memoryview(bytearray(4 * n))[0::4], idx),
        "walk list": (k.walk_list, lambda: [0] * n, idx),
        "walk vec[i32]": (k.walk_vec_i32, lambda: vec[i32](array("i", [0]) * n), idx),
        "walk vec[u8]": (k.walk_vec_u8, lambda: vec[u8](bytes(n)), idx),
        "chase array('i')": (k.chase_array, lambda: array("i", perm), None),
        "chase list": (k.chase_list, lambda: list(perm), None),
        "chase vec[i32]": (k.chase_vec_i32, lambda: vec[i32](array("i", perm)), None),
    }
    out = {}
    for name, (fn, make, index) in cases.items():
        times = []
        for _ in range(repeat):
            a = make()
            t0 = time.process_time()
            fn(a, index) if index is not None else fn(a, 0, ops)
            times.append((time.process_time() - t0) / ops * 1e9)
        out[name] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python bench/bench_vec.py --repeat 5")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        compiled = build(tmp)
        if compiled is None:
            print("bench_vec: mypyc not found beside this Python; "
                  "pip install 'mypy>=2.4' to run it")
            return 0
        results = {"compiled": measure(compiled, args.repeat),
                   "interpreted": measure(interpreted(tmp), args.repeat)}
    print(f"{'ns per element operation (CPU, median)':40} {'compiled':>10} {'interpreted':>12}")
    for name in results["compiled"]:
        print(f"{name:40} {results['compiled'][name]:10.1f} "
              f"{results['interpreted'][name]:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
