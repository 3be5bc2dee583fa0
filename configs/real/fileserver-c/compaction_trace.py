"""What each direct compaction of a recorded trace did (record.sh's trace.txt.gz).

A direct compaction starts at ``mm_compaction_try_to_compact_pages`` (order, gfp,
priority) and runs in the same task: ``mm_compaction_suitable`` per zone it skips,
``mm_compaction_begin``/``mm_compaction_end`` per zone it compacts (the scanners'
positions and the result), ``mm_compaction_migratepages`` per migration batch, until the
task's next direct reclaim or compaction. Prints, for the Normal zone's async runs, the
count per result, the pages migrated per run and how far each scanner went.

    cd configs/real/fileserver-c && python3 compaction_trace.py run-2/trace.txt.gz
"""
import collections
import gzip
import re
import sys

EVENT = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$")
FIELD = re.compile(r"(\w+)=(\S+)")


def events(path):
    """Each event of a gzipped ``trace_pipe`` text: (task name, pid, time, event, fields)."""
    with gzip.open(path, "rt") as trace:
        for line in trace:
            m = EVENT.match(line)
            if m:
                comm, pid, _cpu, ts, name, rest = m.groups()
                yield comm, pid, float(ts), name, dict(FIELD.findall(rest))


def runs(path):
    """One dict per direct compaction, and the compact_zone runs within it."""
    current, out = {}, []
    for _comm, pid, ts, name, kv in events(path):
        if name == "mm_compaction_try_to_compact_pages":
            current[pid] = rec = dict(t=ts, order=int(kv["order"]),
                                      prio=int(kv["priority"]), gfp=kv["gfp_mask"],
                                      zones=[], reclaim_after=False)
            out.append(rec)
        elif pid not in current:
            continue
        elif name == "mm_compaction_begin":
            current[pid]["zones"].append(dict(
                zone_start=int(kv["zone_start"], 16), mode=kv["mode"],
                begin=(int(kv["migrate_pfn"], 16), int(kv["free_pfn"], 16)),
                migrated=0, failed=0))
        elif name == "mm_compaction_migratepages" and current[pid]["zones"]:
            z = current[pid]["zones"][-1]
            z["migrated"] += int(kv["nr_migrated"])
            z["failed"] += int(kv["nr_failed"])
        elif name == "mm_compaction_end" and current[pid]["zones"]:
            z = current[pid]["zones"][-1]
            z["end"] = (int(kv["migrate_pfn"], 16), int(kv["free_pfn"], 16))
            z["status"] = kv["status"]
        elif name == "mm_vmscan_direct_reclaim_begin":
            current.pop(pid)["reclaim_after"] = True
    return out


def success_groups(migrated):
    """The successes' pages migrated, grouped as the kernel's fall: none, one or two
    batches of 32 (a capture of another block), or a whole order-9 block."""
    m = sorted(migrated)
    n = len(m)
    if not n:
        return "successes (async): none"

    def share(lo, hi):
        return f"{100 * sum(lo <= x <= hi for x in m) / n:.0f} %"
    return (f"successes (async): {n}; 0 pages {share(0, 0)}, 1-64 {share(1, 64)}, "
            f"448 or more {share(448, 1 << 30)}; median {m[n // 2]}, mean {sum(m) / n:.0f}")


def main(path):
    out = runs(path)
    zone_runs = [z for r in out for z in r["zones"] if "status" in z]
    normal = max(z["zone_start"] for z in zone_runs)  # the highest zone compacted
    print(f"{path}: {len(out)} direct compactions, {len(zone_runs)} zone runs; "
          f"{sum(not r['zones'] for r in out)} skipped every zone; "
          f"{sum(r['reclaim_after'] for r in out)} followed by direct reclaim")
    rows = collections.defaultdict(list)
    for z in zone_runs:
        if z["zone_start"] == normal:
            rows[(z["status"], z["mode"])].append(z)
    print("| result (Normal) | runs | pages migrated per run (median) | migrate scanner moved "
          "(median pfns) | free scanner moved (median pfns) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (status, mode), zs in sorted(rows.items(), key=lambda kv: -len(kv[1])):
        def med(values):
            values = sorted(values)
            return values[len(values) // 2]
        print(f"| {status} ({mode}) | {len(zs)} | {med(z['migrated'] for z in zs)} | "
              f"{med(z['end'][0] - z['begin'][0] for z in zs)} | "
              f"{med(z['begin'][1] - z['end'][1] for z in zs)} |")
    print(success_groups([z["migrated"] for z in rows.get(("success", "async"), [])]))


if __name__ == "__main__":
    main(sys.argv[1])
