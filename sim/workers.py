"""A process pool that never outlives its parent, for ``fragsim run --jobs``.

Workers are forked (the parent's imports and compiled modules are shared, nothing is
re-imported) and set up as a sweep's are (``sim.executors.worker_init``): they ignore
SIGINT (Ctrl-C reaches the whole process group; the parent alone decides what an
interrupt means) and die with their parent, so a parent killed with SIGKILL leaves no
worker behind. Leaving the pool by an exception, Ctrl-C included, kills the workers.

Progress travels back on a queue: a worker calls ``report(index, t)`` (throttled to a
few messages a second) and the parent hands each message to its ``on_progress``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from typing import Any

from sim import executors

REPORT_EVERY_S = 0.2  # at most this often from each worker (the last report always goes)

_queue: Any = None  # the worker's end of the progress queue (set in each worker)
_last_report = 0.0


def worker_init(parent: int, progress_queue: Any = None) -> None:
    """The initializer of every ``fragsim run --jobs`` worker."""
    global _queue
    executors.worker_init(parent)
    _queue = progress_queue


def report(index: int, t: float, final: bool = False) -> None:
    """From a worker: task ``index`` has reached ``t``; sent at most every 0.2 s."""
    global _last_report
    if _queue is None:
        return
    now = time.monotonic()
    if final or now - _last_report >= REPORT_EVERY_S:
        _last_report = now
        _queue.put((index, t))


class Pool:
    """``with Pool(jobs) as pool: results = pool.map(fn, items, on_progress)``."""

    def __init__(self, jobs: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self._queue = ctx.Queue()
        self._pool = ctx.Pool(jobs, initializer=worker_init,
                              initargs=(os.getpid(), self._queue))

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()
        self._queue.close()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any],
            on_progress: Callable[[int, float], None] | None = None) -> list[Any]:
        """``[fn(item) for item in items]`` in the workers, in order; a task's exception
        is raised here (the others are abandoned)."""
        pending = {i: self._pool.apply_async(fn, (item,)) for i, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        while pending:
            try:
                message = self._queue.get(timeout=0.1)
            except queue_module.Empty:
                message = None
            if message is not None and on_progress is not None:
                on_progress(*message)
            for i in [i for i, r in pending.items() if r.ready()]:
                results[i] = pending.pop(i).get()
                if on_progress is not None:
                    on_progress(i, math.inf)  # done, whatever its last report said
        return results
