#!/usr/bin/env python3
"""Record folio-order histograms of real page-cache and anonymous-memory allocations.

Run as root on the kernel to be measured:

    python3 record.py WORKDIR [--out DIR] [--only NAME[,NAME...]] [--repeat N]
                              [--keep-raw DIR] [--buffer-kb KB] [--list]

WORKDIR must be on ext4, xfs or tmpfs; the script creates its files in a fresh
subdirectory ``folio-rec.<pid>`` of it and deletes them (and the subdirectory) at the end.

For every scenario the script
  1. syncs and drops the caches (``echo 3 > /proc/sys/vm/drop_caches``);
  2. forks a child that prepares the scenario (opens files, allocates and touches its
     buffers) and then blocks on a pipe;
  3. in a private tracefs instance, sets ``set_event_pid`` to the child's pid, clears the
     buffer and enables ``kmem/mm_page_alloc``, and only then sends the go byte, so the
     filter is in place before the child's first traced allocation;
  4. waits for the child (which either runs the scenario in Python or execs ``cat``/``dd``),
     disables the event and reads the trace and the per-CPU ring-buffer statistics
     (overruns would mean lost events; the run is flagged if there are any);
  5. writes ``OUT/<scenario>.json`` (histograms, bytes by order, parameters, kernel and THP
     settings, date) and ``OUT/raw/<scenario>.slice.txt.gz`` (trace header, the first 150
     and the last 50 events of the first run).

tracefs is mounted in a temporary directory if it is not mounted already, and unmounted
again; the tracing instance is removed at the end. Python standard library only.
"""
import argparse
import collections
import contextlib
import ctypes
import datetime
import gc
import gzip
import json
import mmap
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = os.sysconf("SC_PAGE_SIZE")
EVENT = "kmem/mm_page_alloc"
EVENT_RE = re.compile(r"mm_page_alloc: .*?order=(\d+) migratetype=(-?\d+) gfp_flags=(\S+)")
FS_OK = ("ext4", "xfs", "tmpfs")
VMSTAT_KEYS = ("thp_fault_alloc", "thp_fault_fallback", "thp_file_alloc",
               "compact_stall", "pgalloc_normal", "pgalloc_dma32")


# ---------------------------------------------------------------- small helpers

def rd(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        if default is not None:
            return default
        raise


def wr(path, text):
    with open(path, "w") as f:
        f.write(text)


def selected(text):
    """'always [madvise] never' -> 'madvise'."""
    m = re.search(r"\[(\S+)\]", text or "")
    return m.group(1) if m else text


def drop_caches():
    os.sync()
    wr("/proc/sys/vm/drop_caches", "3")


def vmstat():
    out = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k in VMSTAT_KEYS:
                out[k] = int(v)
    return out


def buddyinfo():
    with open("/proc/buddyinfo") as f:
        return [line.rstrip() for line in f]


def migratetype_names():
    """Names in enum order, from /proc/pagetypeinfo ('Number of blocks type ...')."""
    try:
        with open("/proc/pagetypeinfo") as f:
            for line in f:
                if line.startswith("Number of blocks type"):
                    return line.split()[4:]
    except OSError:
        pass
    return ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"]


def mount_of(path):
    """(mount point, fstype, source, options) of the mount holding path (from mountinfo)."""
    st = os.stat(path)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    real = os.path.realpath(path)
    best = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            lf, rf = left.split(), right.split()
            mdev, mpoint, mopts = lf[2], lf[4].replace("\\040", " "), lf[5]
            fstype, source, sopts = rf[0], rf[1], rf[2] if len(rf) > 2 else ""
            inside = real == mpoint or real.startswith(mpoint.rstrip("/") + "/")
            if mdev == dev and inside and (best is None or len(mpoint) >= len(best[0])):
                # per-mount options, then the superblock's own options
                best = (mpoint, fstype, source, mopts + (" / " + sopts if sopts else ""))
    if best is None:
        raise SystemExit(f"cannot find the mount of {path}")
    return best


def block_read_ahead_kb(source):
    name = os.path.basename(source)
    for cand in (name, re.sub(r"p?\d+$", "", name)):
        v = rd(f"/sys/class/block/{cand}/queue/read_ahead_kb", "")
        if v:
            return int(v)
        v = rd(f"/sys/class/block/{cand}/../queue/read_ahead_kb", "")
        if v:
            return int(v)
    return None


def machine_info():
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else ""
    except OSError:
        pass
    mem = rd("/proc/meminfo").splitlines()[0].split()[1]
    thp = "/sys/kernel/mm/transparent_hugepage"
    mthp = {}
    if os.path.isdir(thp):
        for d in sorted(os.listdir(thp)):
            if d.startswith("hugepages-"):
                for knob in ("enabled", "shmem_enabled"):
                    v = rd(f"{thp}/{d}/{knob}", "")
                    if v:
                        mthp.setdefault(d, {})[knob] = selected(v)
    return {
        "kernel_release": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "mem_total_kib": int(mem),
        "page_size": PAGE,
        "thp": {
            "enabled": rd(thp + "/enabled", ""),
            "defrag": rd(thp + "/defrag", ""),
            "shmem_enabled": rd(thp + "/shmem_enabled", ""),
            "hpage_pmd_size": int(rd(thp + "/hpage_pmd_size", "0")),
            "mthp": mthp,
        },
    }


# ---------------------------------------------------------------- tracefs

class Tracer:
    def __init__(self, buffer_kb):
        self.mounted = None
        root = None
        with open("/proc/mounts") as f:
            for line in f:
                p = line.split()
                if p[2] == "tracefs":
                    root = p[1]
                    break
        if root is None:
            root = tempfile.mkdtemp(prefix="folio-rec-tracefs.")
            subprocess.run(["mount", "-t", "tracefs", "nodev", root], check=True)
            self.mounted = root
        self.root = root
        self.inst = os.path.join(root, "instances", "folio-rec.%d" % os.getpid())
        os.mkdir(self.inst)
        self.buffer_kb = buffer_kb
        wr(self.f("buffer_size_kb"), str(buffer_kb))
        wr(self.f(f"events/{EVENT}/enable"), "0")
        wr(self.f("tracing_on"), "1")

    def f(self, name):
        return os.path.join(self.inst, name)

    def start(self, pid):
        wr(self.f("set_event_pid"), str(pid))
        with open(self.f("trace"), "w"):
            pass  # O_TRUNC clears the buffer
        wr(self.f(f"events/{EVENT}/enable"), "1")

    def stop(self):
        wr(self.f(f"events/{EVENT}/enable"), "0")

    def stats(self):
        out = collections.Counter()
        base = self.f("per_cpu")
        for cpu in os.listdir(base):
            for line in rd(os.path.join(base, cpu, "stats"), "").splitlines():
                k, _, v = line.partition(":")
                with contextlib.suppress(ValueError, IndexError):
                    out[k.strip()] += int(float(v.split()[0]))
        return out

    def read(self):
        with open(self.f("trace")) as f:
            return f.read().splitlines()

    def close(self):
        try:
            wr(self.f(f"events/{EVENT}/enable"), "0")
            wr(self.f("set_event_pid"), "")
        except OSError:
            pass
        for _ in range(5):
            try:
                os.rmdir(self.inst)
                break
            except OSError:
                time.sleep(0.2)
        if self.mounted:
            subprocess.run(["umount", self.mounted], check=False)
            os.rmdir(self.mounted)


# ---------------------------------------------------------------- scenario plumbing

def run_traced(tracer, prepare, action):
    """Fork; the child runs prepare() untraced, then action(state) traced by pid."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(ready_r)
            os.close(go_w)
            state = prepare() if prepare else None
            gc.collect()   # touch (copy-on-write) the inherited heap before tracing starts
            gc.disable()
            os.write(ready_w, b"R")
            os.read(go_r, 1)
            action(state)
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) != b"R":
        os.waitpid(pid, 0)
        raise RuntimeError("scenario child failed during preparation")
    tracer.start(pid)
    t0 = time.monotonic()
    os.write(go_w, b"G")
    _, status = os.waitpid(pid, 0)
    t1 = time.monotonic()
    tracer.stop()
    os.close(ready_r)
    os.close(go_w)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("scenario child exited with status %d" % status)
    return pid, t1 - t0


def summarize(lines, mt_names):
    header = [l for l in lines if l.startswith("#")]
    events = [l for l in lines if not l.startswith("#") and "mm_page_alloc:" in l]
    orders = collections.Counter()
    by_mt = collections.defaultdict(collections.Counter)
    by_gfp = collections.defaultdict(collections.Counter)
    for line in events:
        m = EVENT_RE.search(line)
        if not m:
            continue
        order, mt, gfp = int(m.group(1)), int(m.group(2)), m.group(3)
        name = mt_names[mt] if 0 <= mt < len(mt_names) else str(mt)
        orders[order] += 1
        by_mt[name][order] += 1
        by_gfp[gfp][order] += 1

    def hist(c):
        return {str(k): c[k] for k in sorted(c, reverse=True)}

    total_bytes = sum(n * (PAGE << o) for o, n in orders.items())
    bytes_by_order = {str(o): orders[o] * (PAGE << o) for o in sorted(orders, reverse=True)}
    mov = by_mt.get("Movable", collections.Counter())
    mov_bytes = sum(n * (PAGE << o) for o, n in mov.items())
    entries = None
    for l in header:
        m = re.search(r"entries-in-buffer/entries-written: (\d+)/(\d+)", l)
        if m:
            entries = [int(m.group(1)), int(m.group(2))]
    return header, events, {
        "events": len(events),
        "entries_in_buffer_written": entries,
        "orders": hist(orders),
        "by_migratetype": {k: hist(v) for k, v in sorted(by_mt.items())},
        "by_gfp_flags": {k: hist(v) for k, v in
                         sorted(by_gfp.items(), key=lambda kv: -sum(kv[1].values()))},
        "bytes_by_order": bytes_by_order,
        "total_bytes": total_bytes,
        "byte_share_by_order": {o: round(b / total_bytes, 4) if total_bytes else 0.0
                                for o, b in bytes_by_order.items()},
        "movable_bytes_by_order": {str(o): mov[o] * (PAGE << o)
                                   for o in sorted(mov, reverse=True)},
        "movable_byte_share_by_order": {str(o): round(mov[o] * (PAGE << o) / mov_bytes, 4)
                                        for o in sorted(mov, reverse=True)} if mov_bytes else {},
    }


# ---------------------------------------------------------------- workloads (child side)

def make_file(path, size, chunk=MiB):
    buf = bytes(range(256)) * (chunk // 256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = size
        while left > 0:
            left -= os.write(fd, buf[:min(chunk, left)])
        os.fsync(fd)
    finally:
        os.close(fd)


def touched_buffer(size):
    buf = bytearray(size)
    for i in range(0, size, PAGE):
        buf[i] = 1
    return buf


def exec_prepare(argv, stdout="/dev/null"):
    def prepare():
        fd = os.open(stdout, os.O_WRONLY)
        os.dup2(fd, 1)
        os.close(fd)
        return argv
    return prepare


def exec_action(argv):
    os.execvp(argv[0], argv)


def seq_read_prepare(path, rsize, fadvise=None):
    def prepare():
        fd = os.open(path, os.O_RDONLY)
        if fadvise is not None:
            os.posix_fadvise(fd, 0, 0, fadvise)
        return fd, touched_buffer(rsize)
    return prepare


def seq_read_action(state):
    fd, buf = state
    mv = memoryview(buf)
    while os.readv(fd, [mv]) > 0:
        pass


def pread_prepare(path, fsize, count, rsize, seed):
    def prepare():
        rng = random.Random(seed)
        offs = [rng.randrange(fsize // rsize) * rsize for _ in range(count)]
        return os.open(path, os.O_RDONLY), touched_buffer(rsize), offs
    return prepare


def pread_action(state):
    fd, buf, offs = state
    mv = memoryview(buf)
    for off in offs:
        os.preadv(fd, [mv], off)


def write_prepare(path, wsize):
    def prepare():
        if os.path.exists(path):
            os.unlink(path)
        buf = bytes(touched_buffer(wsize))
        return path, buf
    return prepare


def write_action(total):
    def action(state):
        path, buf = state
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        left = total
        while left > 0:
            left -= os.write(fd, buf)
        os.close(fd)
    return action


def small_files_prepare(dirpath, fsize):
    def prepare():
        os.makedirs(dirpath, exist_ok=True)
        return dirpath, bytes(touched_buffer(fsize)[:fsize])
    return prepare


def small_files_action(count):
    def action(state):
        d, buf = state
        for i in range(count):
            fd = os.open(os.path.join(d, "f%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, buf)
            os.close(fd)
    return action


def anon_prepare(size, advice):
    def prepare():
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if advice is not None:
            m.madvise(advice)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        sys.stderr.write(f"  anon mapping at 0x{addr:x} (2 MiB aligned: {addr % (2 * MiB) == 0})\n")
        return m
    return prepare


def anon_action(state):
    m = state
    for i in range(0, len(m), PAGE):
        m[i] = 1


def null_action(state):
    pass


# ---------------------------------------------------------------- the scenarios

def scenarios(data, tmpfs_dir):
    f1g = os.path.join(data, "file-1g")
    f16m = os.path.join(data, "file-16m")
    new = os.path.join(data, "new-file")
    sf = os.path.join(data, "small-files")
    tf = os.path.join(tmpfs_dir, "file-1g") if tmpfs_dir else None
    S = []

    def add(name, desc, params, prepare, action, needs=(), cleanup=None, tmpfs=False):
        S.append(dict(name=name, description=desc, params=params, prepare=prepare,
                      action=action, needs=needs, cleanup=cleanup, tmpfs=tmpfs))

    def rm_new():
        os.sync()
        if os.path.exists(new):
            os.unlink(new)

    def rm_small():
        os.sync()
        shutil.rmtree(sf, ignore_errors=True)

    add("baseline-null", "the child is released and exits at once: the noise floor of the "
        "harness (Python child exiting)",
        dict(pattern="none"), None, null_action)
    add("issue-cat-1g", "`cat FILE > /dev/null` of a 1 GiB file after drop_caches "
        "(coreutils cat: 128 KiB reads, posix_fadvise SEQUENTIAL, i.e. doubled readahead window)",
        dict(file_size=GiB, tool="cat", read_size=128 * KiB, pattern="sequential",
             fadvise="SEQUENTIAL (by cat)"),
        exec_prepare(["cat", f1g]), exec_action, needs=("f1g",))
    add("issue-dd-write-512m-bs1m", "`dd if=/dev/zero of=NEW bs=1M count=512` (buffered, no "
        "fsync; the file is new)",
        dict(file_size=512 * MiB, tool="dd", write_size=MiB, pattern="sequential append",
             new_file=True),
        exec_prepare(["dd", "if=/dev/zero", "of=" + new, "bs=1M", "count=512", "status=none"]),
        exec_action, cleanup=rm_new)
    add("issue-dd-write-512m-bs4k", "`dd if=/dev/zero of=NEW bs=4k count=131072` (buffered, "
        "no fsync; the file is new)",
        dict(file_size=512 * MiB, tool="dd", write_size=4 * KiB, pattern="sequential append",
             new_file=True),
        exec_prepare(["dd", "if=/dev/zero", "of=" + new, "bs=4k", "count=131072", "status=none"]),
        exec_action, cleanup=rm_new)
    add("issue-pread-random-20000x4k", "20 000 `pread`s of 4 KiB at random page-aligned "
        "offsets of a 1 GiB file (random.Random(1)), no fadvise",
        dict(file_size=GiB, tool="python preadv", read_size=4 * KiB, count=20000,
             pattern="random, page aligned", seed=1),
        pread_prepare(f1g, GiB, 20000, 4 * KiB, 1), pread_action, needs=("f1g",))
    add("issue-small-files-2000x2k", "2 000 new files of 2 KiB written one by one "
        "(open O_CREAT|O_EXCL, one write, close) in one new directory, no fsync",
        dict(file_size=2 * KiB, count=2000, tool="python write", pattern="one file at a time"),
        small_files_prepare(sf, 2 * KiB), small_files_action(2000), cleanup=rm_small)
    for rs, label in ((MiB, "1m"), (64 * KiB, "64k"), (16 * KiB, "16k")):
        add(f"seq-read-1g-{label}", "sequential read of a 1 GiB file with {} reads "
            "(Python readv into one buffer), no fadvise".format(label.upper().replace("K", " KiB")
            .replace("M", " MiB")),
            dict(file_size=GiB, tool="python readv", read_size=rs, pattern="sequential",
                 fadvise=None),
            seq_read_prepare(f1g, rs), seq_read_action, needs=("f1g",))
    add("seq-read-1g-128k-fadv-seq", "like cat: 128 KiB reads after posix_fadvise(SEQUENTIAL), "
        "but from the Python harness (no exec)",
        dict(file_size=GiB, tool="python readv", read_size=128 * KiB, pattern="sequential",
             fadvise="SEQUENTIAL"),
        seq_read_prepare(f1g, 128 * KiB, os.POSIX_FADV_SEQUENTIAL), seq_read_action,
        needs=("f1g",))
    add("seq-read-16m-128k", "sequential read of a 16 MiB file with 128 KiB reads, no fadvise",
        dict(file_size=16 * MiB, tool="python readv", read_size=128 * KiB,
             pattern="sequential", fadvise=None),
        seq_read_prepare(f16m, 128 * KiB), seq_read_action, needs=("f16m",))
    if tmpfs_dir:
        add("tmpfs-write-1g-1m", "write a new 1 GiB file on a fresh tmpfs (default options, "
            "huge=never) with 1 MiB writes",
            dict(file_size=GiB, tool="python write", write_size=MiB, pattern="sequential append",
                 fs="tmpfs"),
            write_prepare(tf, MiB), write_action(GiB), tmpfs=True)
        add("tmpfs-read-1g-1m", "read that tmpfs file back with 1 MiB reads (it stays in "
            "memory: drop_caches does not drop tmpfs)",
            dict(file_size=GiB, tool="python readv", read_size=MiB, pattern="sequential",
                 fs="tmpfs"),
            seq_read_prepare(tf, MiB), seq_read_action, tmpfs=True)
    add("anon-256m-madv-hugepage", "anonymous private mmap of 256 MiB, "
        "madvise(MADV_HUGEPAGE), one byte written per 4 KiB page in address order",
        dict(size=256 * MiB, tool="python mmap", pattern="touch every page once, ascending",
             madvise="MADV_HUGEPAGE"),
        anon_prepare(256 * MiB, mmap.MADV_HUGEPAGE), anon_action)
    add("anon-256m-no-madvise", "anonymous private mmap of 256 MiB, no madvise, one byte "
        "written per 4 KiB page in address order",
        dict(size=256 * MiB, tool="python mmap", pattern="touch every page once, ascending",
             madvise=None),
        anon_prepare(256 * MiB, None), anon_action)
    return S


# ---------------------------------------------------------------- README table

def _orders(h):
    return ", ".join("%s: %d" % (o, n) for o, n in h.items()) or "-"


def _mib(b):
    return ("%.1f" % (b / MiB)).rstrip("0").rstrip(".")


def print_table(out):
    order = [s["name"] for s in scenarios("/W", "/T")]
    docs = {}
    for name in os.listdir(out):
        if name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                d = json.load(f)
            docs[d["scenario"]] = d
    print("| scenario | Movable allocations, order: count | Movable MiB | Movable bytes by "
          "order (share) | other migratetypes, order: count | runs with this Movable histogram |")
    print("|---|---|---|---|---|---|")
    for name in sorted(docs, key=lambda n: order.index(n) if n in order else 99):
        d = docs[name]
        r = d["runs"][0]
        mov = r["by_migratetype"].get("Movable", {})
        mb = sum(int(n) * (PAGE << int(o)) for o, n in mov.items())
        share = ", ".join(f"{o}: {100 * v:.1f} %" for o, v in
                          r["movable_byte_share_by_order"].items() if v >= 0.0005)
        other = "; ".join(f"{mt} {_orders(h)}" for mt, h in r["by_migratetype"].items()
                          if mt != "Movable") or "-"
        alike = all(x["by_migratetype"].get("Movable") == mov for x in d["runs"])
        spread = ""
        if not alike:
            tot = [sum(x["by_migratetype"].get("Movable", {}).values()) for x in d["runs"]]
            spread = " (Movable count %d-%d)" % (min(tot), max(tot))
        print("| %s | %s | %s | %s | %s | %d/%d%s |" % (
            name, _orders(mov), _mib(mb), share or "-", other,
            sum(x["by_migratetype"].get("Movable") == mov for x in d["runs"]), len(d["runs"]),
            spread))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep-raw", default="", help="directory for the full raw traces")
    ap.add_argument("--buffer-kb", type=int, default=32768, help="ring buffer per CPU")
    ap.add_argument("--no-tmpfs", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true",
                    help="print the README's markdown table from OUT/*.json and exit")
    args = ap.parse_args()

    if args.table:
        print_table(args.out)
        return 0

    if args.list:
        for s in scenarios("/W", "/T"):
            print("%-30s %s" % (s["name"], s["description"]))
        return 0
    if not args.workdir:
        ap.error("the work directory is required")
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    mpoint, fstype, source, mopts = mount_of(workdir)
    if fstype not in FS_OK:
        raise SystemExit("{} is on {}; need one of {}".format(workdir, fstype, ", ".join(FS_OK)))
    if fstype == "tmpfs":
        sys.stderr.write("warning: tmpfs work directory: drop_caches cannot drop its files\n")
    only = set(filter(None, args.only.split(",")))
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    if args.keep_raw:
        os.makedirs(args.keep_raw, exist_ok=True)

    machine = machine_info()
    mt_names = migratetype_names()
    workinfo = dict(path=workdir, mount_point=mpoint, fstype=fstype, source=source,
                    mount_options=mopts,
                    read_ahead_kb=(block_read_ahead_kb(source)
                                   if source.startswith("/dev/") else None))
    data = tempfile.mkdtemp(prefix="folio-rec.", dir=workdir)
    tmpfs_dir = None
    tracer = None
    created = {}
    try:
        tracer = Tracer(args.buffer_kb)
        plan = [s for s in scenarios(data, "/nonexistent") if not only or s["name"] in only]
        if any(s["tmpfs"] for s in plan) and not args.no_tmpfs:
            tmpfs_dir = tempfile.mkdtemp(prefix="folio-rec-tmpfs.")
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200m", "folio-rec",
                            tmpfs_dir], check=True)
        plan = [s for s in scenarios(data, tmpfs_dir) if not only or s["name"] in only]
        tmpfs_info = mount_of(tmpfs_dir) if tmpfs_dir else None
        for s in plan:
            for need in s["needs"]:
                if need not in created:
                    path, size = {"f1g": (os.path.join(data, "file-1g"), GiB),
                                  "f16m": (os.path.join(data, "file-16m"), 16 * MiB)}[need]
                    sys.stderr.write("creating %s (%d bytes)\n" % (path, size))
                    make_file(path, size)
                    created[need] = path
            runs = []
            for r in range(args.repeat):
                sys.stderr.write("%s run %d ...\n" % (s["name"], r + 1))
                drop_caches()
                # re-read the tools and locale files the exec'd scenarios use, so that
                # their own page cache does not count as the scenario's
                subprocess.run("cat /dev/null; dd --version; cat --version",
                               shell=True, stdout=subprocess.DEVNULL)
                time.sleep(0.5)
                vm0, bud0 = vmstat(), buddyinfo()
                st0 = tracer.stats()
                pid, secs = run_traced(tracer, s["prepare"], s["action"])
                st1 = tracer.stats()
                vm1, bud1 = vmstat(), buddyinfo()
                lines = tracer.read()
                header, events, summ = summarize(lines, mt_names)
                lost = {k: st1[k] - st0.get(k, 0) for k in ("overrun", "dropped events")
                        if k in st1}
                run = dict(run=r + 1, pid=pid, seconds=round(secs, 3), lost=lost,
                           complete=not any(lost.values()), **summ,
                           vmstat_delta_systemwide={k: vm1.get(k, 0) - vm0.get(k, 0)
                                                    for k in VMSTAT_KEYS},
                           buddyinfo_before=bud0, buddyinfo_after=bud1)
                runs.append(run)
                top = ", ".join("o%s:%d" % kv for kv in list(summ["orders"].items())[:8])
                sys.stderr.write("  %d events in %.2f s, lost %s: %s\n"
                                 % (summ["events"], secs, lost, top))
                if args.keep_raw:
                    with open(os.path.join(args.keep_raw, "%s.r%d.txt" % (s["name"], r + 1)),
                              "w") as f:
                        f.write("\n".join(lines) + "\n")
                if r == 0:
                    sl = header + events[:150] + (["# ... %d events left out ..."
                                                   % (len(events) - 200)] if len(events) > 200
                                                  else []) + \
                        (events[-50:] if len(events) > 150 else [])
                    with open(os.path.join(args.out, "raw", s["name"] + ".slice.txt.gz"),
                              "wb") as raw:
                        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                            gz.write(("\n".join(sl) + "\n").encode())
                if s["cleanup"]:
                    s["cleanup"]()
            fs = dict(tmpfs_info and dict(path=tmpfs_dir, fstype=tmpfs_info[1],
                                          mount_options=tmpfs_info[3])) if s["tmpfs"] \
                else workinfo
            doc = dict(scenario=s["name"], description=s["description"], params=s["params"],
                       fs=fs, machine=machine, page_size=PAGE, migratetypes=mt_names,
                       date=datetime.datetime.now(datetime.UTC).isoformat(
                           timespec="seconds"),
                       recorded_with=dict(command=" ".join(["python3"] + sys.argv),
                                          event=EVENT, filter="set_event_pid (tracefs instance)",
                                          buffer_size_kb_per_cpu=args.buffer_kb,
                                          drop_caches="sync; echo 3 > /proc/sys/vm/drop_caches"),
                       runs=runs)
            with open(os.path.join(args.out, s["name"] + ".json"), "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
    finally:
        if tracer:
            tracer.close()
        if tmpfs_dir:
            subprocess.run(["umount", tmpfs_dir], check=False)
            os.rmdir(tmpfs_dir)
        os.sync()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
