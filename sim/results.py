"""Run results: time series, summaries and the run directory, written atomically.

A run directory holds ``config.yaml`` (fully resolved, with version and seeds),
``timeseries.csv`` (tidy long format: time, variant, seed, metric, key, value),
``summary.json`` and ``final/`` (buddyinfo, pagetypeinfo, slabinfo in the kernel's
formats). Plots read these files and nothing else, so old runs can be redrawn.

Every file is written to a temporary name and renamed into place, and a run directory
is assembled under ``.NAME.partial-PID`` and renamed at the end: an interrupted run
never leaves a file or a directory that looks complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TIMESERIES_COLUMNS = ("time", "variant", "seed", "metric", "key", "value")


class Recorder:
    """Collects samples as (metric, key) series sharing one time axis."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._series: dict[tuple[str, str], list[float]] = {}

    def sample(self, time: float, values: dict[tuple[str, str], float]) -> None:
        """Record one sample; a series first seen late is padded with NaN before."""
        n = len(self.times)
        self.times.append(time)
        for name, value in values.items():
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = [float("nan")] * n
            series.append(float(value))
        for series in self._series.values():
            if len(series) == n:  # absent from this sample
                series.append(float("nan"))

    def series(self) -> dict[tuple[str, str], np.ndarray]:
        return {name: np.asarray(values) for name, values in self._series.items()}


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
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


class RunDirectory:
    """Assemble a run directory under a partial name; ``commit()`` renames it into place.

    Used as a context manager: leaving it by an exception (Ctrl-C included) removes the
    partial directory, so nothing incomplete is left behind.
    """

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir()

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        if not self.path.exists():
            return self.final
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            os.replace(self.final, old)
            os.replace(self.path, self.final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.final)
        return self.final


def write_timeseries(path: str | Path, results: Iterable[Result]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for result in results:
        writer.writerows(result.rows())
    write_atomic(path, buffer.getvalue())


def read_timeseries(path: str | Path) -> dict[tuple[str, int], dict[tuple[str, str], tuple]]:
    """{(variant, seed): {(metric, key): (times, values)}} from a timeseries.csv."""
    columns: dict[tuple[str, int], dict[tuple[str, str], tuple[list, list]]] = defaultdict(dict)
    with open(path, newline="", encoding="utf-8") as f:
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
