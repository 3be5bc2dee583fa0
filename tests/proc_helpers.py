"""Child processes seen through /proc, for the tests that kill fragsim and check that no
worker survives it (fragsim runs on Linux, where /proc is always there)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def interruptible() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT: SIGINT at its default
    there, so that its Python turns it into KeyboardInterrupt as a terminal's Ctrl-C
    would, even where the tests themselves run with SIGINT ignored (a background job of
    a shell without job control, whose children inherit the ignoring)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> dict[int, str]:
    """{child pid: its start time}: the processes whose parent is ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                found[int(entry.name)] = fields[19]
    return found


def alive(pid: int, started: str) -> bool:
    """The process that started at ``started`` still runs (a reused pid does not count,
    nor a zombie)."""
    fields = proc_stat(pid)
    return fields is not None and fields[19] == started and fields[0] not in "ZX"


def survivors(workers: dict[int, str], wait_s: float = 5.0) -> list[int]:
    """The workers still alive after up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while any(alive(p, s) for p, s in workers.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p, s in workers.items() if alive(p, s)]


def kill_survivors(workers: dict[int, str]) -> None:
    """A failed test cleans up after itself."""
    for pid, started in workers.items():
        if alive(pid, started):
            os.kill(pid, signal.SIGKILL)
