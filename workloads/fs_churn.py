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

With ``lifetime`` the workload is a steady state instead (a mail spool, a build tree, a
cache directory): files are created at ``create_rate`` for as long as the workload runs,
and each is unlinked when its lifetime (drawn at its creation) ends, so the population
settles near ``create_rate`` x the mean lifetime and a long run does not grow. Its
directories are a pool that grows only with the largest population seen (a directory
per ``dir_size`` live files); after ``stop`` no file is created and the live ones are
still unlinked as they expire. A file left open (``open_share``) is held open for its
life, closed and then unlinked.
"""

from __future__ import annotations

from array import array
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.units import Duration, Size
from workloads.base import Lifetime, PacedParams, Workload
from workloads.objloop import create_files, unlink_files

# The create-then-delete keys a steady state (``lifetime``) has no use for.
_ONE_SHOT_KEYS = ("files", "keep", "delete_rate", "delete_after")


class FsChurn(Workload):
    kind = "fs_churn"

    class Params(PacedParams):
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
        lifetime: Lifetime | None = Field(
            None, description="steady state: create files at create_rate while the "
            "workload runs, each unlinked when its lifetime ends (files, keep, "
            "delete_rate and delete_after then do not apply)")

        @model_validator(mode="after")
        def _sizes(self):
            if self.lifetime is not None:
                fields = type(self).model_fields
                given = [k for k in _ONE_SHOT_KEYS
                         if getattr(self, k) != fields[k].default]
                if given:
                    raise ValueError(
                        f"{given[0]}: expected no {given[0]} with lifetime (a steady state "
                        f"creates files while it runs and unlinks each as its lifetime "
                        f"ends), got {getattr(self, given[0])}")
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
        # This workload's files, by creation (4 bytes each); after its unlinks only the
        # ones it kept, which is all that its summary asks of them.
        self.files = array("i")
        self.dirs: list[int] = []
        self.live = 0  # steady state: files created and not yet unlinked

    def run(self):
        p = self.params
        env = self.env
        fsys = self.fsys = self.machine.filesystem(p.fs, inode_cache=p.inode_cache)
        if p.lifetime is not None:
            yield from self._steady(fsys)
            return
        sizes = self.rng.integers(p.min_bytes, p.max_bytes + 1, p.files).tolist()
        opened = (self.rng.random(p.files) < p.open_share).tolist()
        carry = 0.0
        i = 0
        # In locals: a pydantic model's attribute goes through its __getattr__ hook.
        nr_files, dir_size, write_size = p.files, p.dir_size, p.write_size
        while i < nr_files:
            carry += self.paced(p.create_rate)
            n = min(int(carry), nr_files - i)
            carry -= n
            # (workloads/objloop.py: compiled, the loop over the tick's files)
            made: list[int] = []
            self.failed += create_files(fsys, self.cpu, i, n, sizes, opened, dir_size,
                                        write_size, made, self.dirs)
            self.files.extend(made)
            self.created += len(made)
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
            fids = np.frombuffer(self.files, dtype=np.int32)[doomed[k:k + n]].tolist()
            unlink_files(fsys, self.cpu, fids)
            self.deleted += len(fids)
            k += n
            yield env.timeout(p.tick)
        # Forget the unlinked ones: a run of many waves would keep them all otherwise.
        kept = np.ones(len(self.files), dtype=bool)
        kept[doomed] = False
        self.files = array("i", np.frombuffer(self.files, dtype=np.int32)[kept].tobytes())

    def _mkdir(self, fsys, cpu: int) -> None:
        """A directory: a page-less file, never deleted."""
        dir_fid = fsys.create(0, cpu)
        if dir_fid is None:
            self.failed += 1
        else:
            self.dirs.append(dir_fid)

    def _steady(self, fsys):
        """Create at ``create_rate`` while active; unlink each file as it expires."""
        p = self.params
        env = self.env
        lifetime = p.lifetime
        assert lifetime is not None
        carry = 0.0
        while True:
            now = env.now
            due = self.pop_expired(now)
            for item in due:
                cpu = self.cpu()
                if item < 0:  # held open for its life: closed, then unlinked
                    fsys.close(-1 - item, cpu)
                    item = -1 - item
                fsys.unlink(item, cpu)
            self.deleted += len(due)
            self.live -= len(due)
            if self.active():
                carry += self.paced(p.create_rate)
                n = int(carry)
                carry -= n
                if n:
                    self._create_steady(fsys, n, now)
            elif not self._expiry:
                return
            yield env.timeout(p.tick)

    def _create_steady(self, fsys, n: int, now: float) -> None:
        p = self.params
        sizes = self.rng.integers(p.min_bytes, p.max_bytes + 1, n).tolist()
        opened = (self.rng.random(n) < p.open_share).tolist() if p.open_share else None
        lives = p.lifetime.sample(self.rng, n).tolist()
        whens: list[float] = []
        items: list[int] = []
        dir_size, write_size = p.dir_size, p.write_size
        for j in range(n):
            cpu = self.cpu()
            if dir_size and len(self.dirs) * dir_size <= self.live:
                # the pool grows with the population: a directory per dir_size files
                self._mkdir(fsys, cpu)
            held = bool(opened and opened[j])
            fid = fsys.create(cpu=cpu, keep_open=held, size=sizes[j],
                              write_size=write_size)
            if fid is None:
                self.failed += 1
                continue
            self.created += 1
            self.live += 1
            whens.append(now + lives[j])
            items.append(-1 - fid if held else fid)
        self.expire_many(whens, items)

    def summary(self) -> dict[str, Any]:
        out = {"created": self.created, "deleted": self.deleted, "failed": self.failed}
        if self.params.lifetime is not None:
            out["live_files"] = self.live
            out["live_dirs"] = len(self.dirs)
            if self.fsys is not None:
                out.update({f"fs_{k}": v for k, v in self.fsys.stats.as_dict().items()})
            return out
        if self.fsys is not None:
            # This workload's files and directories still linked; the fs_* counters are
            # the file system's, which later fs_churn workloads of the same type share.
            files = self.fsys.files
            out["live_files"] = sum(1 for fid in self.files if fid in files and files[fid].linked)
            out["live_dirs"] = sum(1 for fid in self.dirs if fid in files and files[fid].linked)
            out.update({f"fs_{k}": v for k, v in self.fsys.stats.as_dict().items()})
        return out
