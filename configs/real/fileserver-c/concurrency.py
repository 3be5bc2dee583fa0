"""Did a 2 MiB block come free while a direct compaction ran? (run-4's trace)

For each async direct compaction of the Normal zone (``mm_compaction_begin`` to
``mm_compaction_end`` in one task), counts the order-9 frees (``mm_page_free`` with the
``order==9`` filter record.sh's EXTRA_EVENTS set) in Normal by other tasks between its
begin and end, and its ``mm_compaction_finished`` checks, per result.

    python3 configs/real/fileserver-c/concurrency.py configs/real/fileserver-c/run-4/trace.txt.gz
"""
import bisect
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compaction_trace import events  # noqa: E402

NORMAL_START = 0x100000


def main(path):
    frees = []  # (time, pid) of order-9 frees in Normal
    runs = []
    open_runs = {}
    for comm, pid, t, name, kv in events(path):
        if name == "mm_page_free" and int(kv["order"]) == 9:
            if int(kv["pfn"], 16) >= NORMAL_START:
                frees.append((t, pid, comm))
        elif name == "mm_compaction_begin" and int(kv["zone_start"], 16) == NORMAL_START:
            open_runs[pid] = dict(t0=t, mode=kv["mode"], finished=0, comm=comm)
        elif name == "mm_compaction_finished" and pid in open_runs:
            open_runs[pid]["finished"] += 1
        elif name == "mm_compaction_end" and pid in open_runs:
            run = open_runs.pop(pid)
            run.update(t1=t, status=kv["status"], pid=pid)
            runs.append(run)
    times = [f[0] for f in frees]
    table = collections.defaultdict(list)
    for run in runs:
        if run["comm"].startswith("kcompactd"):
            continue
        lo = bisect.bisect_left(times, run["t0"])
        hi = bisect.bisect_right(times, run["t1"])
        others = [f for f in frees[lo:hi] if f[1] != run["pid"]]
        table[(run["status"], run["mode"])].append(
            (len(others), run["t1"] - run["t0"], run["finished"],
             collections.Counter(f[2].split("-")[0] for f in others)))
    print(f"{path}: {len(frees)} order-9 frees in Normal, {len(runs)} compaction runs")
    print("| result | runs | with a 2 MiB free meanwhile | frees meanwhile (mean) | "
          "duration ms (median) | compact_finished checks (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (status, mode), rows in sorted(table.items(), key=lambda kv: -len(kv[1])):
        n = len(rows)
        with_free = sum(1 for r in rows if r[0])
        mean = sum(r[0] for r in rows) / n
        dur = sorted(r[1] for r in rows)[n // 2] * 1e3
        fin = sorted(r[2] for r in rows)[n // 2]
        print(f"| {status} ({mode}) | {n} | {with_free} | {mean:.2f} | {dur:.2f} | {fin} |")
    who = collections.Counter()
    for rows in table.values():
        for r in rows:
            who.update(r[3])
    print("freed by:", dict(who.most_common(5)))


if __name__ == "__main__":
    main(sys.argv[1])
