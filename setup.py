"""Build: the package, with sim.native.NATIVE_MODULES compiled by mypyc.

The compiled build is the same Python source as a C extension (sim/native.py says
how the running process chooses between the two). With ``FRAGSIM_PURE_PYTHON=1`` set,
or when mypyc or the C compiler fails, the install is pure Python, with a warning.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sim.native import C_EXTENSIONS, NATIVE_MODULES, PURE_ENV, RECORD, source_digest  # noqa: E402

RECORD_PATH = HERE / "sim" / RECORD


def warn(message: str) -> None:
    print(f"fragsim setup: {message}; installing pure Python (slower, same results)",
          file=sys.stderr)


def record_failure(reason: str, *paths: Path) -> None:
    """A build record that says why compiling failed: pip hides this script's output,
    so fragsim says it once when it starts (sim/native.py)."""
    lines = reason.strip().splitlines()
    first = lines[0] if lines else "?"
    if len(first) > 100:
        first = first[:100] + "..."
    for path in paths:
        if path.parent.is_dir():
            path.write_text(json.dumps({"failed": first}, indent=1) + "\n")


class OptionalBuildExt(build_ext):
    """A failed compile leaves a working pure-Python install, not a failed one."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # one module per core

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # a compiler error, a missing header, ...
            record_failure(f"the C compiler failed: {err}", RECORD_PATH,
                           Path(self.build_lib) / "sim" / RECORD)
            warn(f"compiling failed ({err})")


def native_extensions() -> list:
    RECORD_PATH.unlink(missing_ok=True)
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return []
    try:
        import mypy.version
        from mypyc.build import mypycify

        extensions = mypycify(
            # Only these modules must type-check; the rest of sim/ is read for types.
            ["--follow-imports=silent", "--ignore-missing-imports"]
            + [str(Path(*m.split(".")).with_suffix(".py")) for m in NATIVE_MODULES],
            opt_level="3",
            # One C file and one shared library per module: smaller compile steps,
            # and each library sits beside its module (sim/<name>__mypyc...).
            separate=True,
        )
    except (Exception, SystemExit) as err:  # mypy missing, or refusing the source
        record_failure(f"mypyc exited with status {err.code}" if isinstance(err, SystemExit)
                       else f"mypyc failed: {err}", RECORD_PATH)
        warn(f"mypyc unavailable ({err})")
        return []
    RECORD_PATH.write_text(json.dumps({
        "mypy": mypy.version.__version__,
        "modules": {m: source_digest(m) for m in (*NATIVE_MODULES, *C_EXTENSIONS)},
    }, indent=1) + "\n")
    # The C extensions: only with the mypyc build, whose record they share.
    return extensions + [Extension(name, [source]) for name, source in C_EXTENSIONS.items()]


setup(ext_modules=native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
