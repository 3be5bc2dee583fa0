"""Sizes and durations with units, as configs write them: ``16GiB``, ``4KiB``, ``500ns``, ``1h``.

Sizes are IEC binary units (KiB = 1024 B). ``KB``/``MB``/``GB`` are refused rather than
guessed at, since kernel documentation and tools disagree on what they mean.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

SIZE_UNITS = {
    "B": 1,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
}
TIME_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_NUMBER_UNIT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ]*)\s*")


def parse_size(value: int | float | str) -> int:
    """Bytes from ``16GiB``, ``4 KiB``, ``1.5GiB`` or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 4KiB or 16GiB, got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), "B"
    else:
        match = _NUMBER_UNIT.fullmatch(str(value))
        if not match:
            raise ValueError(f"expected a size such as 4KiB or 16GiB, got {value!r}")
        number, unit = float(match.group(1)), match.group(2) or "B"
    if unit not in SIZE_UNITS:
        raise ValueError(
            f"expected a size unit of {', '.join(SIZE_UNITS)}, got {unit!r} in {value!r}"
        )
    size = number * SIZE_UNITS[unit]
    if size != int(size) or size < 0:
        raise ValueError(f"expected a whole, non-negative number of bytes, got {value!r}")
    return int(size)


def parse_duration(value: int | float | str) -> float:
    """Seconds from ``500ns``, ``20ms``, ``10s``, ``1h``, ``7d`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 20ms or 1h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _NUMBER_UNIT.fullmatch(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 20ms or 1h, got {value!r}")
        unit = match.group(2) or "s"
        if unit not in TIME_UNITS:
            raise ValueError(
                f"expected a time unit of {', '.join(TIME_UNITS)}, got {unit!r} in {value!r}"
            )
        seconds = float(match.group(1)) * TIME_UNITS[unit]
    if seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


def format_size(nbytes: int) -> str:
    """The shortest exact IEC form: 17179869184 -> '16GiB', 6144 -> '6KiB'."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if nbytes and nbytes % SIZE_UNITS[unit] == 0:
            return f"{nbytes // SIZE_UNITS[unit]}{unit}"
    return f"{nbytes}B"


def format_duration(seconds: float) -> str:
    """A readable form: 0.02 -> '20ms', 3600 -> '1h'."""
    for unit in ("w", "d", "h", "min", "s", "ms", "us", "ns"):
        scaled = seconds / TIME_UNITS[unit]
        if scaled >= 1 and abs(scaled - round(scaled)) < 1e-9:
            return f"{round(scaled)}{unit}"
    return f"{seconds:g}s"


# The config schema's quantities: a number, or a string with a unit.
Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


def human_size(nbytes: float) -> str:
    """Exact when whole in some unit (``4GiB``, ``1152MiB``), else three significant
    digits (``33.6MiB``); with a sign for differences."""
    sign = "-" if nbytes < 0 else ""
    n = abs(nbytes)
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scaled = n / SIZE_UNITS[unit]
        if scaled >= 1 and scaled == int(scaled) and scaled < 10000:
            return f"{sign}{int(scaled)}{unit}"
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scaled = n / SIZE_UNITS[unit]
        if scaled >= 1:
            text = f"{scaled:.3g}" if scaled < 1000 else f"{scaled:.0f}"
            return f"{sign}{text}{unit}"
    return f"{sign}{n:g}B"


def format_quantity(value: float | None, kind: str, digits: int = 6) -> str:
    """A value in its own units: ``kind`` is "size", "duration" or anything else (a
    plain number, ``digits`` significant)."""
    if value is None or value != value:
        return "-"
    if kind == "size":
        return human_size(value)
    if kind == "duration":
        return format_duration(value) if value >= 0 else "-" + format_duration(-value)
    return f"{value:.{digits}g}"
