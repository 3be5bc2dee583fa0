"""Read a file from start to end PASSES times in 1 MiB reads, so that its page cache
streams through memory and kswapd evicts it. ``random`` sets POSIX_FADV_RANDOM first:
6.18 then reads each request with ``force_page_cache_ra`` in order-0 folios; otherwise
readahead builds folios up to the device's read_ahead_kb (8 MiB: 2 MiB folios).

    python3 reader.py FILE PASSES [random]
"""
import os
import sys
import time


def main(path: str, passes: int, random: bool) -> None:
    fd = os.open(path, os.O_RDONLY)
    if random:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    total = 0
    start = time.monotonic()
    for _ in range(passes):
        os.lseek(fd, 0, os.SEEK_SET)
        while True:
            n = len(os.read(fd, 1 << 20))
            if not n:
                break
            total += n
    os.close(fd)
    print(f"read {total} bytes in {time.monotonic() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "random")
