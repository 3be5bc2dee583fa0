"""fragsim: a discrete-event simulator of Linux physical memory fragmentation.

The allocator core (`sim.buddy`, `sim.slab`, `sim.compaction`) is plain synchronous
Python that knows nothing of SimPy or plotting; metrics (`sim.metrics`) are pure
functions of its state; `sim.procfs` reads and writes the kernel's text formats;
`sim.machine` wires SimPy processes around them and `sim.runner` writes results.
"""

__version__ = "0.1.0"

from sim import native as _native  # noqa: E402  (before any compiled module loads)

# Whether the mypyc-compiled build of sim.native.NATIVE_MODULES runs, and why.
NATIVE, NATIVE_REASON = _native.select()


def run(config, seed=None, variant=None, progress=None):
    """Run one variant (default: the first) of a config with one seed; see sim.runner.run.

    ``config`` is a path to a YAML file or a ``sim.config.ExperimentConfig``; the result
    holds the time series as numpy arrays (``result.get("avail", "9")``), the summary,
    and ``.to_csv()``.
    """
    from sim.runner import run as _run

    return _run(config, seed=seed, variant=variant, progress=progress)
