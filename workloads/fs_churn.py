"""``fs_churn``: create N files, then delete a random share (the shared capture's workload).

Each file is a dentry, an inode with its LSM blob, its page-cache folios, for files of
more than one page XArray nodes, and on ext4 (``fs: disk``), once written, two
extent_status entries (sim/objects.py). A file is written from offset 0 in ``write(2)``
calls of ``write_size`` bytes (default: the whole file at once), so its folio orders
are those 6.18's buffered write gives (``fgf_set_order`` of each call, up to the file
system's largest folio; sim/readahead.py): a 1 MiB write on ext4 is one order-8 folio,
4 KiB writes are order 0, tmpfs (``huge=never``) is order 0.

``fs: tmpfs`` pins every live file's dentry and inode; ``fs: disk`` leaves closed files
unused on the LRUs, their page cache on the file LRU. A directory is modelled as a
page-less file created every ``dir_size`` files and never deleted (the capture used
100-file directories; sim/objects.py has no directory tree).

Run with the capture's parameters (20 000 files of 0-299 bytes, keep 10 %, tmpfs) it
should land near the real kernel's slab growth: configs/tmpfs_churn.yaml.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sim.units import Duration, Size
from workloads.base import Workload, WorkloadParams


class FsChurn(Workload):
    kind = "fs_churn"

    class Params(WorkloadParams):
        fs: Literal["tmpfs", "disk"] = "tmpfs"
        files: int = Field(20000, ge=0)
        create_rate: float = Field(50000.0, gt=0, description="files per second")
        delete_rate: float = Field(50000.0, gt=0, description="unlinks per second")
        max_bytes: Size = Field(299, description="file sizes uniform in min_bytes..max_bytes")
        min_bytes: Size = Field(0, description="smallest file size")
        write_size: Size | None = Field(
            None, description="bytes per write(2) call (default: the whole file in one)")
        delete_after: Duration = Field(0.0, description="wait between the last create "
                                                          "and the first delete")
        keep: float = Field(0.1, ge=0, le=1, description="share of files not deleted")
        dir_size: int = Field(100, ge=0, description="a directory per this many files")
        open_share: float = Field(0.0, ge=0, le=1, description="files left open (pinned)")
        inode_cache: str | None = None

        @model_validator(mode="after")
        def _sizes(self):
            if self.min_bytes > self.max_bytes:
                raise ValueError(f"min_bytes: expected at most max_bytes ({self.max_bytes}), "
                                 f"got {self.min_bytes}")
            if self.write_size is not None and self.write_size <= 0:
                raise ValueError("write_size: expected more than 0 bytes")
            return self

    def __init__(self, machine, params, index=0) -> None:
        super().__init__(machine, params, index)
        self.fsys = None
        self.created = self.deleted = self.failed = 0
        self.files: list[int] = []
        self.dirs: list[int] = []

    def run(self):
        p = self.params
        env = self.env
        fsys = self.fsys = self.machine.filesystem(p.fs, inode_cache=p.inode_cache)
        sizes = self.rng.integers(p.min_bytes, p.max_bytes + 1, p.files).tolist()
        opened = (self.rng.random(p.files) < p.open_share).tolist()
        carry = 0.0
        i = 0
        while i < p.files:
            carry += p.create_rate * p.tick
            n = min(int(carry), p.files - i)
            carry -= n
            for j in range(i, i + n):
                cpu = self.cpu()
                if p.dir_size and j % p.dir_size == 0:
                    dir_fid = fsys.create(0, cpu)
                    if dir_fid is None:
                        self.failed += 1
                    else:
                        self.dirs.append(dir_fid)
                fid = fsys.create(cpu=cpu, keep_open=opened[j], size=sizes[j],
                                  write_size=p.write_size)
                if fid is None:
                    self.failed += 1
                    continue
                self.files.append(fid)
                self.created += 1
            i += n
            yield env.timeout(p.tick)
        if p.delete_after:
            yield env.timeout(p.delete_after)
        doomed = self.rng.permutation(len(self.files))[: round(len(self.files) * (1 - p.keep))]
        carry = 0.0
        k = 0
        while k < len(doomed):
            carry += p.delete_rate * p.tick
            n = min(int(carry), len(doomed) - k)
            carry -= n
            for idx in doomed[k:k + n].tolist():
                fsys.unlink(self.files[idx], self.cpu())
                self.deleted += 1
            k += n
            yield env.timeout(p.tick)

    def summary(self) -> dict[str, Any]:
        out = {"created": self.created, "deleted": self.deleted, "failed": self.failed}
        if self.fsys is not None:
            # This workload's files and directories still linked; the fs_* counters are
            # the file system's, which later fs_churn workloads of the same type share.
            files = self.fsys.files
            out["live_files"] = sum(1 for fid in self.files if fid in files and files[fid].linked)
            out["live_dirs"] = sum(1 for fid in self.dirs if fid in files and files[fid].linked)
            out.update({f"fs_{k}": v for k, v in self.fsys.stats.as_dict().items()})
        return out
