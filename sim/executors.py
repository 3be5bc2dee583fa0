"""Where a sweep's (or a capacity search's) runs execute: a local process pool, or dask.

``open_executor("local", jobs)`` is a ``ProcessPoolExecutor`` (``jobs == 1`` runs in this
process); ``open_executor("dask", jobs, scheduler)`` sends the same work to
``dask.distributed.Client(ADDR)`` or to a LocalCluster. Both yield ``(index, result,
error)`` as each item finishes.

No worker outlives its sweep. While an executor is open (``with open_executor(...)``)
SIGTERM, SIGHUP and SIGINT raise :class:`Interrupted` (a ``KeyboardInterrupt``) in this
process, and leaving the block by an exception terminates the workers and waits for
them (SIGTERM, then SIGKILL after a grace period) instead of letting them finish their
points. A local worker also dies with its parent when the parent cannot clean up (kill
-9, the OOM killer): on Linux it asks for ``PR_SET_PDEATHSIG`` = SIGKILL when it starts,
elsewhere a thread in it checks every second that its parent is still the one that
started it. The workers of a LocalCluster fragsim starts for ``--executor dask`` die
with it too: dask ends a worker process when the pipe its parent holds open closes.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sim.errors import FragsimError

CONNECT_TIMEOUT_S = 5.0
CLUSTER_EXTRA = "pip install 'fragsim[cluster]'"
# The signals that end a sweep cleanly (workers terminated, files consistent).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT")
                     if hasattr(signal, name))
TERMINATE_GRACE_S = 2.0  # SIGTERM first; SIGKILL for a worker still alive after this
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while an executor was open; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------ worker side


def worker_init(parent: int) -> None:
    """A local pool worker's initializer: signals, and dying with the parent."""
    # Ctrl-C goes to the whole process group: the parent handles it, workers carry on
    # until the parent terminates them, so no worker prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the parent's handlers, which raise Interrupted: the
    # parent's SIGTERM must end a worker at once, as the default does.
    for signum in STOP_SIGNALS:
        if signum != signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
    armed = _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="fragsim-parent-watch",
                         daemon=True).start()


def _set_parent_death_signal(signum: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, signum) on Linux; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


# ------------------------------------------------------------------ parent side


class Executor:
    """Runs a function over items, yielding ``(index, result, error)`` as each finishes.

    As a context manager it turns stop signals into :class:`Interrupted` (in the main
    thread only; elsewhere Python cannot set handlers) and, on leaving by an exception,
    calls :meth:`abort` rather than :meth:`close`.
    """

    _saved: dict[int, Any] | None = None

    def map_unordered(self, fn: Callable[[Any], Any],
                      items: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers once their work is done."""

    def abort(self) -> None:
        """Stop workers now, dropping their work (default: as close)."""
        self.close()

    def __enter__(self) -> Executor:
        if threading.current_thread() is threading.main_thread():
            self._saved = {}
            for signum in STOP_SIGNALS:
                self._saved[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Once: a second signal must not interrupt the cleanup the first one started.
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise Interrupted(signum)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.close()
            else:
                self.abort()
        finally:
            saved, self._saved = self._saved, None
            for signum, handler in (saved or {}).items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class LocalExecutor(Executor):
    """A process pool of ``jobs`` workers (forked where the OS allows: no re-imports);
    ``jobs == 1`` runs everything in this process.

    At most ``jobs`` items are in flight. A worker that dies (killed for memory, a
    segfault) breaks a ``ProcessPoolExecutor`` and fails everything in it, so the items
    that were in flight are run again one at a time in a fresh pool: the one that kills
    its worker again is reported with the error, the others finish.
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs or default_jobs()
        if self.jobs < 1:
            raise FragsimError(f"--jobs: expected a number of at least 1, got {self.jobs}")
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            fork = "fork" in methods
            if fork:
                # The workers share this process's heap copy-on-write: a collection in a
                # worker would scan (and so copy) all of it. Frozen objects are never
                # scanned; measured, a worker's first point took 2.5x as long without.
                gc.freeze()
            context = multiprocessing.get_context("fork" if fork else None)
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context,
                                             initializer=worker_init,
                                             initargs=(os.getpid(),))
        return self._pool

    def worker_pids(self) -> list[int]:
        """The pool's live worker processes (none before the first item is submitted)."""
        pool = self._pool
        processes = (getattr(pool, "_processes", None) or {}) if pool is not None else {}
        return [p.pid for p in list(processes.values()) if p.is_alive()]

    def map_unordered(self, fn, items):
        if self.jobs == 1:
            for i, item in enumerate(items):
                try:
                    result = fn(item)
                except Exception as err:
                    yield i, None, err
                else:
                    yield i, result, None
            return
        queue = collections.deque(enumerate(items))
        suspects: collections.deque = collections.deque()
        window: dict = {}
        try:
            while queue or suspects:
                isolating = bool(suspects)
                source, limit = (suspects, 1) if isolating else (queue, self.jobs)
                pool = self._get_pool()
                crash: BaseException | None = None
                lost = []
                while (source or window) and crash is None:
                    while source and len(window) < limit:
                        i, item = source.popleft()
                        try:
                            window[pool.submit(fn, item)] = (i, item)
                        except BrokenProcessPool as err:  # broke since the last wait
                            source.appendleft((i, item))
                            crash = err
                            break
                    if crash is not None:
                        break
                    done, _ = wait(window, return_when=FIRST_COMPLETED)
                    for future in done:
                        i, item = window.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenProcessPool):
                            crash = error
                            lost.append((i, item))
                        else:
                            yield i, None if error else future.result(), error
                if crash is None:
                    continue
                lost.extend(window.values())  # in flight in the broken pool too
                window.clear()
                self._terminate()
                if isolating and lost:  # alone in its pool: this one killed its worker
                    for i, _item in lost:
                        yield i, None, crash
                else:
                    suspects.extend(sorted(lost))
        except BaseException:
            for future in window:
                future.cancel()
            self._terminate()
            raise

    def _terminate(self) -> None:
        """SIGTERM every worker, wait for them, SIGKILL those still alive."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        gc.unfreeze()
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)

    def abort(self) -> None:
        self._terminate()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            gc.unfreeze()


class DaskExecutor(Executor):
    """The same work on a dask.distributed cluster: ``Client(scheduler)``, or a
    LocalCluster of ``jobs`` single-threaded worker processes when no address is given.

    Connecting gives up after ``connect_timeout`` seconds with a one-line error.

    At most ``IN_FLIGHT_PER_THREAD`` items per worker thread are submitted at a time,
    and each future is released as soon as its result is taken: a result lives in a
    worker's memory from the end of its item until this process has it, so a sweep of
    any length holds a few results, not all of them. Results come straight from the
    worker that made them (``direct_to_workers``; set ``distributed.client.
    direct-to-workers: false`` in the dask config where this process cannot reach the
    workers, and they come through the scheduler).

    A worker that dies (killed for memory, a segfault) fails the items it was running
    (the one that killed it and the one waiting behind it) with ``KilledWorker``. As
    the local pool does, such an item is run again alone (nothing else in flight): the
    one that kills its worker again is reported with the error, the others finish. The
    LocalCluster fragsim starts gives up on a task at its first worker death
    (``distributed.scheduler.allowed-failures: 0``; dask's default runs it on three
    more workers, each of which it kills), and its nannies start a new worker for each
    one that died; a remote scheduler keeps its own setting. The LocalCluster's workers
    die with this process: dask ends them when their parent goes away, kill -9
    included.
    """

    IN_FLIGHT_PER_THREAD = 2
    REFRESH_THREADS_S = 5.0  # how often the in-flight bound follows a cluster's size
    LOCAL_CLUSTER_CONFIG = {"distributed.scheduler.allowed-failures": 0}

    def __init__(self, scheduler: str | None = None, jobs: int | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S,
                 cluster_options: dict[str, Any] | None = None) -> None:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError as err:
            raise FragsimError(
                f"--executor dask: expected dask.distributed to be installed, got "
                f"{type(err).__name__}: {err}; install it with {CLUSTER_EXTRA}") from None
        self.cluster = None
        direct = dask.config.get("distributed.client.direct-to-workers", None)
        direct = True if direct is None else direct
        self._threads: int | None = None  # worker threads, as last asked
        self._threads_asked = -math.inf
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=connect_timeout,
                                     set_as_default=False, direct_to_workers=direct)
            except Exception as err:  # OSError on timeout, ValueError on a bad address
                detail = " ".join(str(err).split()) or type(err).__name__
                raise FragsimError(
                    f"--scheduler {scheduler}: expected a reachable dask scheduler, got no "
                    f"connection within {connect_timeout:g} s ({detail})") from None
        else:
            import logging

            options = {"n_workers": jobs or default_jobs(), "threads_per_worker": 1,
                       "processes": True, "dashboard_address": None,
                       "silence_logs": logging.ERROR}
            options.update(cluster_options or {})
            with dask.config.set(self.LOCAL_CLUSTER_CONFIG):  # read as the scheduler starts
                self.cluster = LocalCluster(**options)
            self.client = Client(self.cluster, set_as_default=False, direct_to_workers=direct)

    def in_flight_limit(self) -> int:
        """How many items may be submitted at a time: ``IN_FLIGHT_PER_THREAD`` per worker
        thread (asked of the scheduler at most every ``REFRESH_THREADS_S``; at least 1)."""
        now = time.monotonic()
        if self._threads is None or now - self._threads_asked >= self.REFRESH_THREADS_S:
            self._threads = sum(self.client.nthreads().values())
            self._threads_asked = now
        return self.IN_FLIGHT_PER_THREAD * max(1, self._threads)

    def map_unordered(self, fn, items):
        from dask.distributed import KilledWorker
        from dask.distributed import as_completed as dask_as_completed

        queue = collections.deque(enumerate(items))
        suspects: collections.deque = collections.deque()
        window: dict[Any, tuple[int, Any, bool, Any]] = {}  # key: (i, item, alone, future)
        done = dask_as_completed(loop=self.client.loop)

        def submit(i: int, item: Any, alone: bool) -> None:
            future = self.client.submit(fn, item, pure=False, retries=0)
            window[future.key] = (i, item, alone, future)
            done.add(future)

        def refill() -> None:
            if suspects:  # one at a time, once the others are out of the way
                if not window:
                    submit(*suspects.popleft(), alone=True)
                return
            limit = self.in_flight_limit() if queue else 0
            while queue and len(window) < limit:
                submit(*queue.popleft(), alone=False)

        try:
            refill()
            for future in done:
                i, item, alone, _ = window.pop(future.key)
                try:
                    if future.status == "error":
                        result, error = None, future.exception()
                    else:
                        result, error = future.result(), None
                finally:
                    future.release()  # the worker may drop the result now
                if isinstance(error, KilledWorker) and not alone:
                    suspects.append((i, item))  # perhaps it only shared the dead worker
                    refill()
                    continue
                refill()  # before yielding: the workers go on while this one is written
                yield i, result, error
        except BaseException:
            self.client.cancel([future for *_, future in window.values()])
            raise

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_executor(executor: str = "local", jobs: int | None = None, scheduler: str | None = None,
                  connect_timeout: float = CONNECT_TIMEOUT_S,
                  cluster_options: dict[str, Any] | None = None) -> Executor:
    """``local`` or ``dask``; a one-line error for anything else."""
    if jobs is not None and jobs < 1:
        raise FragsimError(f"--jobs: expected a number of at least 1, got {jobs}")
    if executor == "local":
        if scheduler:
            raise FragsimError(f"--scheduler {scheduler}: expected --executor dask with it, "
                               "got --executor local")
        return LocalExecutor(jobs)
    if executor == "dask":
        return DaskExecutor(scheduler, jobs, connect_timeout, cluster_options)
    raise FragsimError(f"--executor: expected local or dask, got {executor!r}")


__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "Interrupted", "open_executor",
           "default_jobs", "CONNECT_TIMEOUT_S"]
