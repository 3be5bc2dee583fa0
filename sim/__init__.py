"""fragsim: a discrete-event simulator of Linux physical memory fragmentation.

The allocator core (`sim.buddy`, later `sim.slab`) is plain synchronous Python that
knows nothing of SimPy or plotting; metrics (`sim.metrics`) are pure functions of its
state; `sim.procfs` reads and writes the kernel's /proc and debugfs text formats.
"""

__version__ = "0.1.0"
