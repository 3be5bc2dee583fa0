"""Run results: time series, summaries and the run directory, written atomically.

A run directory holds ``config.yaml`` (fully resolved, with version and seeds),
``timeseries.csv`` (tidy long format: time, variant, seed, metric, key, value),
``summary.json`` and ``final/`` (buddyinfo, pagetypeinfo, slabinfo in the kernel's
formats). Plots read these files and nothing else, so old runs can be redrawn.

Every file is written to a temporary name and renamed into place, and a run directory
is assembled under ``.NAME.partial-PID`` and renamed at the end: an interrupted run
never leaves a file or a directory that looks complete. A run directory carries a
marker (``.fragsim-result``); fragsim replaces an existing directory only when it
carries it (``check_output``), holds a lock beside it while it writes, and restores the
previous result if a kill came between its two final renames (``recover_leftovers``).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import glob
import gzip
import io
import json
import os
import shutil
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import FragsimError

TIMESERIES_COLUMNS = ("time", "variant", "seed", "metric", "key", "value")


def zone_key(zone: str, key: str = "") -> str:
    """The key of one zone's series: the machine-wide series' key after the zone's name
    and a slash, ``Normal/9`` (``avail``), ``DMA32/Movable`` (``pageblocks``), or the
    zone's name alone where the machine-wide key is empty (``free_pages`` key
    ``Normal``), as sim/metrics.py ``node_metrics`` names them (docs/results.md)."""
    return f"{zone}/{key}" if key else zone


# Summary keys that measure the process, not the simulation: two runs of the same config
# and seed differ in these alone.
TIMING_KEYS = ("wall_s", "ops_per_s", "slab_ops_per_s", "peak_rss_bytes", "cpu_s",
               "slow_path_s", "slow_path_time_share")


class Recorder:
    """Collects samples as (metric, key) series sharing one time axis.

    Each series is an ``array('d')``: 8 bytes a value, where a list of floats takes 32,
    so a long run's samples cost a quarter of the memory (issue 20: a run's memory
    grows with its samples alone).
    """

    _ROWS = 64

    def __init__(self) -> None:
        self.times = array("d")
        self._series: dict[tuple[str, str], array] = {}
        # Samples with the same keys in the same order as the one before (a run's
        # every sample, as a rule) are kept as rows, a list of values each or a buffer
        # of float64 (``sample_row``), and moved into their series by numpy every
        # _ROWS samples and whenever anything else reads or changes the series (a
        # sample costs a few microseconds, not one append per series).
        self._keys: tuple[tuple[str, str], ...] = ()
        self._rows: list[Any] = []

    def sample(self, time: float, values: dict[tuple[str, str], float]) -> None:
        """Record one sample; a series first seen late is padded with NaN before."""
        keys = tuple(values)
        if self._add_row(time, keys, list(values.values())):
            return
        self._flush()
        n = len(self.times)
        self.times.append(time)
        for name, value in values.items():
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = array("d", [float("nan")]) * n
            series.append(float(value))
        for series in self._series.values():
            if len(series) == n:  # absent from this sample
                series.append(float("nan"))
        self._keys = keys

    def sample_row(self, time: float, keys: Sequence[tuple[str, str]], values: Any) -> None:
        """``sample`` of keys in order and their values as a buffer of float64 (a
        sim/metrics.py ``SampleRow``): the same series, without a dict or a Python
        number per value. ``values`` is kept as it is until the next flush."""
        row = tuple(keys)
        if not self._add_row(time, row, values):
            self.sample(time, dict(zip(row, np.asarray(values, dtype=np.float64).tolist(),
                                       strict=True)))

    def _add_row(self, time: float, keys: tuple[tuple[str, str], ...], row: Any) -> bool:
        """Keep a sample with the keys, in order, of the one before (and every series)
        as a row; False, keeping nothing, for any other."""
        if keys != self._keys or len(keys) != len(self._series):
            return False
        self.times.append(time)
        self._rows.append(row)
        if len(self._rows) >= self._ROWS:
            self._flush()
        return True

    def _flush(self) -> None:
        """Move the rows kept by ``_add_row`` into their series."""
        if not self._rows:
            return
        # A row is a list of numbers (sample) or a float64 buffer (sample_row).
        columns = np.stack([np.asarray(r, dtype=np.float64) for r in self._rows]).T.copy()
        for name, column in zip(self._keys, columns, strict=True):
            self._series[name].frombytes(column.tobytes())
        self._rows = []

    def decimate(self) -> None:
        """Keep every other sample, the first included: half as many, twice as far apart
        (a stream of unknown length keeps a bounded number of evenly spaced samples)."""
        self._flush()
        self.times = self.times[::2]
        for name, series in self._series.items():
            self._series[name] = series[::2]

    def series(self) -> dict[tuple[str, str], np.ndarray]:
        self._flush()
        return {name: np.array(values, dtype=float) for name, values in self._series.items()}


@dataclass
class Result:
    """One variant x seed of a run: its time series and its summary."""

    variant: str
    seed: int
    times: np.ndarray
    series: dict[tuple[str, str], np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)  # file name -> kernel-format text
    memmap: dict[str, dict] = field(default_factory=dict)  # "start"/"end" -> pageblock arrays

    def get(self, metric: str, key: str = "") -> np.ndarray:
        return self.series[(metric, key)]

    def rows(self) -> Iterator[tuple]:
        for (metric, key), values in self.series.items():
            for time, value in zip(self.times, values, strict=True):
                if value == value:  # skip NaN padding
                    yield (f"{time:.9g}", self.variant, self.seed, metric, key, f"{value:.10g}")

    def to_csv(self, path: str | Path | None = None) -> str:
        """The tidy long table; written atomically to ``path`` when given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TIMESERIES_COLUMNS)
        writer.writerows(self.rows())
        text = buffer.getvalue()
        if path is not None:
            write_atomic(path, text)
        return text


def write_atomic(path: str | Path, text: str) -> None:
    """Write a file via a temporary sibling and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def json_text(data: Any) -> str:
    """The JSON text ``write_json`` writes."""
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json(path: str | Path, data: Any) -> None:
    write_atomic(path, json_text(data))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


MARKER = ".fragsim-result"  # written first into every directory fragsim writes
# What fragsim itself writes into a directory of each kind, to recognise those written
# before the marker existed: the first file named, and nothing but these (and PNGs).
_LEGACY_ENTRIES = {
    "run": ("summary.json", frozenset({"config.yaml", "timeseries.csv", "summary.json",
                                       "final", "memmap"})),
    "sweep": ("sweep.json", frozenset({"sweep.json", "sweep.csv", "points", "failures.json",
                                       "plots"})),
    "capacity": ("capacity.json", frozenset({"capacity.json"})),
    "compare": ("compare.json", frozenset({"compare.json"})),
}


class OutputInUse(FragsimError):
    """Another fragsim process is writing the same output directory."""


def _marker_kind(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8")).get("kind") or "run"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return "?"


def is_fragsim_result(path: Path, kind: str = "run") -> bool:
    """Whether ``path`` is a directory fragsim wrote as ``kind`` ("run", "sweep",
    "capacity"): its marker says so, or, written before the marker existed, it holds
    nothing but what fragsim writes there."""
    if path.is_symlink() or not path.is_dir():
        return False
    found = _marker_kind(path)
    if found is not None:
        return found == kind
    signature, entries = _LEGACY_ENTRIES[kind]
    try:
        names = [entry.name for entry in path.iterdir()]
    except OSError:
        return False
    return signature in names and all(n in entries or n.endswith(".png") for n in names)


def check_output(final: str | Path, kind: str = "run") -> Path:
    """Refuse an output path that fragsim may not write to; returns it as a Path.

    fragsim writes only a new path, an empty directory, or a directory it wrote as
    ``kind``; never a file, a symbolic link or a directory it did not write.
    """
    final = Path(final)
    what = "a fragsim result" if kind == "run" else f"a fragsim {kind} directory"
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise FragsimError(f"{final}: is a file or a symbolic link, not {what}; choose "
                           "another --out")
    if final.is_dir() and any(final.iterdir()) and not is_fragsim_result(final, kind):
        found = _marker_kind(final)
        if found is not None and found != kind:
            raise FragsimError(f"{final}: is a fragsim {found} directory, not {what}; "
                               "choose another --out")
        raise FragsimError(f"{final}: exists and is not {what} (no {MARKER} marker); "
                           "fragsim writes only into its own: choose another --out or "
                           "move it away")
    return final


def _lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def _acquire_lock(final: Path) -> int:
    """An exclusive flock on ``.NAME.lock`` beside the output, or OutputInUse.

    The lock file is removed on release; a process that locked a file someone removed
    meanwhile tries again, so two processes never both believe they hold it.
    """
    path = _lock_path(final)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise OutputInUse(f"{final}: another fragsim process (pid {holder}) is writing "
                              "this directory; wait for it or choose another --out") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # removed by its last holder between our open and our lock


def _release_lock(final: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        _lock_path(final).unlink()
    os.close(fd)


def recover_leftovers(final: Path) -> list[str]:
    """Put right what a killed fragsim left beside ``final``; call with the lock held.

    ``.NAME.old-PID`` is the previous result, renamed aside just before the new one was
    renamed into place: if the kill came between the two renames, ``final`` is missing
    and the old result is restored; otherwise it is deleted. ``.NAME.partial-PID`` is a
    run that never finished: deleted. Only directories carrying fragsim's marker are
    touched. Returns what was done, one line each.
    """
    done: list[str] = []
    parent, name = final.parent, final.name
    if not parent.is_dir():
        return done
    olds = sorted(parent.glob(f".{glob.escape(name)}.old-*"),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds:
        if not is_fragsim_result(old):
            continue
        if not final.exists():
            os.replace(old, final)
            done.append(f"{final}: restored the previous result from {old.name}")
        else:
            shutil.rmtree(old, ignore_errors=True)
    for partial in parent.glob(f".{glob.escape(name)}.partial-*"):
        if partial.is_dir() and not partial.is_symlink() and (
                (partial / MARKER).is_file() or not any(partial.iterdir())):
            shutil.rmtree(partial, ignore_errors=True)
    return done


class RunDirectory:
    """Assemble a run directory under a partial name; ``commit()`` renames it into place.

    Created before a run starts, it refuses an output fragsim may not replace
    (``check_output``) and takes a lock on it, so a second run to the same directory
    refuses rather than racing; it puts right what a killed run left
    (``recover_leftovers``). Used as a context manager: leaving it by an exception
    (Ctrl-C included) removes the partial directory, so nothing incomplete is left
    behind, and the previous result, if any, stays as it was.
    """

    def __init__(self, final: str | Path, kind: str = "run") -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        check_output(self.final)
        self._lock: int | None = _acquire_lock(self.final)
        try:
            self.recovered = recover_leftovers(self.final)
            check_output(self.final)  # a restored result is ours; anything else was refused
            self.path = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir()
            write_atomic(self.path / MARKER, json_text(
                {"fragsim_version": _version(), "kind": kind}))
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self.release()

    def release(self) -> None:
        if self._lock is not None:
            _release_lock(self.final, self._lock)
            self._lock = None

    def commit(self) -> Path:
        if not self.path.exists():
            return self.final
        if self.final.exists():
            check_output(self.final)
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            os.replace(self.final, old)
            os.replace(self.path, self.final)  # a kill before this: recover_leftovers
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.final)
        return self.final


@contextlib.contextmanager
def output_directory(path: str | Path, kind: str) -> Iterator[Path]:
    """A directory fragsim writes into in place, over several steps (a sweep, which
    resumes; a capacity study): created when missing, or reused when it is one of
    fragsim's of this ``kind`` or empty (``check_output``); a lock beside it refuses a
    second writer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_output(path, kind)
    lock = _acquire_lock(path)
    try:
        path.mkdir(exist_ok=True)
        if not (path / MARKER).is_file():
            write_atomic(path / MARKER, json_text({"fragsim_version": _version(),
                                                   "kind": kind}))
        yield path
    finally:
        _release_lock(path, lock)


def _version() -> str:
    from sim import __version__

    return __version__


def write_timeseries(path: str | Path, results: Iterable[Result]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for result in results:
        writer.writerows(result.rows())
    write_atomic(path, buffer.getvalue())


def read_timeseries(path: str | Path) -> dict[tuple[str, int], dict[tuple[str, str], tuple]]:
    """{(variant, seed): {(metric, key): (times, values)}} from a timeseries.csv (or a
    gzipped timeseries.csv.gz, as kept captures are stored)."""
    columns: dict[tuple[str, int], dict[tuple[str, str], tuple[list, list]]] = defaultdict(dict)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        if tuple(header) != TIMESERIES_COLUMNS:
            raise ValueError(f"{path}: expected columns {','.join(TIMESERIES_COLUMNS)}, "
                             f"got {','.join(header)}")
        for time, variant, seed, metric, key, value in reader:
            times, values = columns[(variant, int(seed))].setdefault((metric, key), ([], []))
            times.append(float(time))
            values.append(float(value))
    return {
        run: {name: (np.asarray(t), np.asarray(v)) for name, (t, v) in series.items()}
        for run, series in columns.items()
    }
