"""A golden run: the exact outcome of one short seeded run, pinned.

Any change to the allocators, daemons or workloads that changes behaviour changes
these numbers, so a faster path that is not equivalent fails here. When a change is
meant to change behaviour, update the numbers in the same commit and say why.
"""

from sim.config import load_config
from sim.runner import run_machine

OVERRIDES = ["duration=3s", "machine.memory=128MiB", "workloads.0.files=20000"]


def test_a_seeded_short_quickstart_run_ends_exactly_as_pinned():
    config = load_config("configs/quickstart.yaml", OVERRIDES, variant="defrag-on")
    summary = run_machine(config, 7, "defrag-on").summary
    assert summary["avail"] == {
        "0": 19799, "1": 9897, "2": 4939, "3": 2423, "4": 1189, "5": 580, "6": 284,
        "7": 139, "8": 67, "9": 32, "10": 14}
    caches = {name: (c["num_slabs"], c["active_objs"]) for name, c in summary["caches"].items()}
    assert caches == {"dentry": (32, 415), "ext4_inode_cache": (41, 286),
                      "radix_tree_node": (42, 239)}
    assert (summary["alloc_ops"], summary["slab_ops"]) == (68219, 93786)
