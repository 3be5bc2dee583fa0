/* The shared compaction anchor's program, phase by phase, for recording a real kernel
 * without an observer in the process: fill an anonymous mapping (THP off for it), wait,
 * free 3 of every 4 pages with one madvise(MADV_DONTNEED) call per page in address order,
 * wait, exit (which releases the rest). Between phases it blocks on a read of stdin, as
 * a program waiting for its operator does (no polling), so record.sh can take a snapshot.
 *
 *   cc -O2 -o /tmp/staged staged.c
 *   /tmp/staged MiB        # reads one line before the frees, one before the exit
 *   /tmp/staged MiB PAGES  # fill at most MiB, stopping once the Normal zone's
 *                          # nr_free_pages (/proc/zoneinfo, read every MiB) is <= PAGES
 *
 * Prints, for each phase, the CPU it started and ended on (sched_getcpu), its time and rate.
 */
#define _GNU_SOURCE
#include <sched.h>
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

static long normal_free(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	int normal = 0;
	long n = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node", 4))
			normal = strstr(line, "Normal") != NULL;
		else if (normal && sscanf(line, " nr_free_pages %ld", &n) == 1)
			break;
	}
	if (f)
		fclose(f);
	return n;
}

static void wait_line(void)
{
	char buf[64];

	if (!fgets(buf, sizeof(buf), stdin))
		exit(1);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	long until = argc > 2 ? strtol(argv[2], NULL, 0) : -1;
	size_t page = 4096, len = mib << 20, npages = len / page, freed = 0;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (madvise(p, len, MADV_NOHUGEPAGE))
		perror("madvise(MADV_NOHUGEPAGE)");
	int c0 = sched_getcpu();
	double t0 = now();
	for (size_t i = 0; i < npages; i++) {
		p[i * page] = 1;
		if (until >= 0 && (i & 255) == 255 && normal_free() <= until) {
			npages = i + 1;
			len = npages * page;
			break;
		}
	}
	double dt = now() - t0;
	printf("fill cpu %d -> %d pages %zu seconds %.3f MiB/s %.0f\n", c0, sched_getcpu(),
	       npages, dt, len / dt / (1 << 20));
	wait_line();
	c0 = sched_getcpu();
	t0 = now();
	for (size_t i = 0; i < npages; i++) {
		if ((i & 3) == 0)
			continue;
		if (madvise(p + i * page, page, MADV_DONTNEED)) {
			perror("madvise(MADV_DONTNEED)");
			return 1;
		}
		freed++;
	}
	dt = now() - t0;
	printf("free cpu %d -> %d pages %zu seconds %.3f MiB/s %.0f\n", c0, sched_getcpu(),
	       freed, dt, freed * page / dt / (1 << 20));
	wait_line();
	printf("exit cpu %d\n", sched_getcpu());
	return 0;
}
