/* How fast a loop of madvise(MADV_DONTNEED) calls, one per 4 KiB page, frees 3 of
 * every 4 pages of a touched anonymous mapping (transparent huge pages off for it).
 *
 *   cc -O2 -o /tmp/madvise_rate madvise_rate.c && /tmp/madvise_rate [MiB] [keep]
 *
 * MiB defaults to 1024; keep (0-3, default 3) is the page of each 4 left mapped.
 * Prints how fast the pages were touched (the fill: one page fault each), then the pages
 * freed, the seconds the madvise loop took and its rate in MiB/s and pages/s.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	int keep = argc > 2 ? atoi(argv[2]) : 3;
	size_t page = 4096, len = mib << 20, npages = len / page, freed = 0;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (madvise(p, len, MADV_NOHUGEPAGE))
		perror("madvise(MADV_NOHUGEPAGE)");
	double t0 = now();
	for (size_t i = 0; i < npages; i++)
		p[i * page] = 1;
	double dt = now() - t0;
	printf("touched %zu pages in %.3f s: %.0f MiB/s\n", npages, dt, len / dt / (1 << 20));
	t0 = now();
	for (size_t i = 0; i < npages; i++) {
		if ((int)(i & 3) == keep)
			continue;
		if (madvise(p + i * page, page, MADV_DONTNEED)) {
			perror("madvise(MADV_DONTNEED)");
			return 1;
		}
		freed++;
	}
	dt = now() - t0;
	printf("freed %zu pages in %.3f s: %.0f MiB/s, %.0f pages/s\n", freed, dt,
	       freed * page / dt / (1 << 20), freed / dt);
	return 0;
}
