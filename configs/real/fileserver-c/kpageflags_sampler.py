"""Sample which Normal-zone pfns are free while a capture runs (as root).

Waits for OUT/samples.csv (the capture tool's clock starts when it writes it), then at
each of the given seconds after that reads /proc/kpageflags for the Normal zone (its
start_pfn and spanned pages from /proc/zoneinfo) and keeps, per pfn, one byte of flags:
bit 0 BUDDY (the head of a free block), 1 LRU, 2 SLAB, 3 COMPOUND_HEAD, 4 COMPOUND_TAIL,
5 ANON, 6 NOPAGE/HWPOISON/OFFLINE (a hole). Writes OUT/kpageflags-<t>.npz.

    python3 kpageflags_sampler.py OUT 40 80 120 160
"""
import os
import re
import sys
import time

import numpy as np

# our bit: KPF_* bit (include/uapi/linux/kernel-page-flags.h)
BITS = {0: 10, 1: 5, 2: 7, 3: 15, 4: 16, 5: 12}
HOLE = (1 << 20) | (1 << 19) | (1 << 23)  # KPF_NOPAGE, KPF_HWPOISON, KPF_OFFLINE


def normal_zone():
    with open("/proc/zoneinfo") as f:
        text = f.read()
    z = text[text.index("zone   Normal"):]
    start = int(re.search(r"start_pfn:\s+(\d+)", z).group(1))
    spanned = int(re.search(r"spanned\s+(\d+)", z).group(1))
    return start, spanned


def sample(out, t, start, n):
    with open("/proc/kpageflags", "rb") as f:
        f.seek(start * 8)
        raw = np.frombuffer(f.read(n * 8), dtype=np.uint64)
    flags = np.zeros(len(raw), dtype=np.uint8)
    for ours, kpf in BITS.items():
        flags |= (((raw >> np.uint64(kpf)) & np.uint64(1)).astype(np.uint8) << ours)
    flags |= (((raw & np.uint64(HOLE)) != 0).astype(np.uint8) << 6)
    np.savez_compressed(os.path.join(out, f"kpageflags-{t:g}.npz"), flags=flags,
                        start_pfn=start)


def main():
    out, times = sys.argv[1], [float(x) for x in sys.argv[2:]]
    path = os.path.join(out, "samples.csv")
    while not os.path.exists(path):
        time.sleep(0.05)
    t0 = time.monotonic()
    start, n = normal_zone()
    for t in times:
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        sample(out, t, start, n)
        print(f"kpageflags at {time.monotonic() - t0:.2f} s", flush=True)


if __name__ == "__main__":
    main()
