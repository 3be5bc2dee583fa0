"""kswapd's cost per folio and per page evicted, from a record.sh run.

    python3 configs/real/reclaim-cost/analyze.py configs/real/reclaim-cost/run-1

For each mode: kswapd0's CPU time (schedstat), the pages it scanned and reclaimed
(vmstat), the folios it deleted from the page cache by order (the trace; in the
order-0 mode a one-second sample), and from those its CPU time per folio and per page.
Then the least-squares fit of CPU = a * folios + b * pages over the modes, with each
mode's residual: a per folio, b per page.
"""
import collections
import sys
from pathlib import Path

MODES = ("ra8192", "ra128", "random")


def vmstat(path: Path) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def mode_figures(d: Path) -> dict:
    cpu_ns = (int((d / "kswapd_schedstat.after").read_text().split()[0])
              - int((d / "kswapd_schedstat.before").read_text().split()[0]))
    before, after = vmstat(d / "vmstat.before"), vmstat(d / "vmstat.after")
    delta = {k: after[k] - before.get(k, 0) for k in after}
    orders = collections.Counter()
    for line in (d / "delete_orders.txt").read_text().splitlines():
        order, n = line.split()
        orders[int(order)] += int(n)
    traced_folios = sum(orders.values())
    traced_pages = sum(n << o for o, n in orders.items())
    pages = delta["pgsteal_kswapd"]
    # Folios from the pages kswapd reclaimed at the traced mean folio size.
    folios = pages * traced_folios / traced_pages if traced_pages else float("nan")
    return {"cpu_ns": cpu_ns, "pgscan": delta["pgscan_kswapd"], "pages": pages,
            "folios": folios, "orders": dict(sorted(orders.items())),
            "pgsteal_direct": delta["pgsteal_direct"], "allocstall":
            sum(v for k, v in delta.items() if k.startswith("allocstall"))}


def main(run: str) -> None:
    rows = {m: mode_figures(Path(run) / m) for m in MODES if (Path(run) / m).is_dir()}
    print(f"{run}: kswapd0's eviction of clean page cache")
    print("| mode | folios deleted by order (traced) | kswapd CPU (ms) | pages reclaimed "
          "| pages scanned | folios (at the traced size) | ns per folio | ns per page "
          "| direct reclaim (stalls, pages) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for m, r in rows.items():
        print(f"| {m} | {r['orders']} | {r['cpu_ns'] / 1e6:,.0f} | {r['pages']:,} "
              f"| {r['pgscan']:,} | {r['folios']:,.0f} | {r['cpu_ns'] / r['folios']:,.0f} "
              f"| {r['cpu_ns'] / r['pages']:,.1f} | {r['allocstall']}, {r['pgsteal_direct']:,} |")
    # Least squares: cpu = a * folios + b * pages.
    sff = sum(r["folios"] ** 2 for r in rows.values())
    spp = sum(r["pages"] ** 2 for r in rows.values())
    sfp = sum(r["folios"] * r["pages"] for r in rows.values())
    sfc = sum(r["folios"] * r["cpu_ns"] for r in rows.values())
    spc = sum(r["pages"] * r["cpu_ns"] for r in rows.values())
    det = sff * spp - sfp * sfp
    a = (sfc * spp - spc * sfp) / det
    b = (spc * sff - sfc * sfp) / det
    print(f"fit: {a:,.0f} ns per folio + {b:,.1f} ns per page")
    for m, r in rows.items():
        model = a * r["folios"] + b * r["pages"]
        print(f"  {m}: measured {r['cpu_ns'] / 1e6:,.0f} ms, fit {model / 1e6:,.0f} ms "
              f"({(model - r['cpu_ns']) / r['cpu_ns']:+.1%})")


if __name__ == "__main__":
    main(sys.argv[1])
