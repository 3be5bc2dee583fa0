/* A minimal C buddy allocator running bench/bench_buddy.py's operation sequence.
 *
 * What fragsim's allocator is measured against (issue 20: bare Zone >= 0.5x, end to
 * end >= 0.25x this loop's ops/s). One free list per order, no migratetypes, no
 * per-CPU lists, no watermarks: a doubly linked list over a page array (next and prev
 * pfn per page, and the order of the free block a page heads, or -1), split on
 * allocation, merged with the buddy (pfn ^ (1 << order)) on free.
 *
 * Lists are LIFO: a freed or split-off block goes to the head, allocation takes the
 * head. bench_buddy.LifoBuddy is the same allocator in Python, so the free blocks per
 * order at the end must be the same as its (the correctness check bench/run.py prints).
 *
 *     cc -O2 -o cbuddy bench/cbuddy.c
 *     ./cbuddy OPS_FILE REPEAT
 *
 * OPS_FILE (bench_buddy.write_ops): eight little-endian int64 (magic "FSBUDDY1",
 * nr_pages, max_order, nr_ops, nr_prefill, nr_slots, 0, 0), then nr_ops int8 kinds
 * (0 alloc, 1 free), nr_ops int8 orders, nr_ops int32 slots. The first nr_prefill
 * operations fill the zone untimed; the rest are timed in CPU time
 * (CLOCK_PROCESS_CPUTIME_ID), REPEAT times on a zone built anew each time.
 *
 * Prints one line per repeat, "seconds OPS_TIMED CPU_S", then, for the last repeat,
 * "free ORDER BLOCKS" for each order, "failed N" (allocations that found no block)
 * and "checksum X" (a hash of every free block's pfn and order, list by list).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NIL (-1)

typedef struct {
    int64_t nr_pages;
    int max_order;
    int32_t *next, *prev;
    int8_t *free_order;  /* the order of the free block this pfn heads, or -1 */
    int32_t head[32];
    int64_t nr_free[32];
} zone_t;

static void push(zone_t *z, int32_t pfn, int order)
{
    int32_t h = z->head[order];
    z->next[pfn] = h;
    z->prev[pfn] = NIL;
    if (h != NIL)
        z->prev[h] = pfn;
    z->head[order] = pfn;
    z->free_order[pfn] = (int8_t)order;
    z->nr_free[order]++;
}

static void unlink_block(zone_t *z, int32_t pfn, int order)
{
    int32_t n = z->next[pfn], p = z->prev[pfn];
    if (p != NIL)
        z->next[p] = n;
    else
        z->head[order] = n;
    if (n != NIL)
        z->prev[n] = p;
    z->free_order[pfn] = -1;
    z->nr_free[order]--;
}

static void zone_init(zone_t *z)
{
    int64_t pfn = 0;
    memset(z->free_order, -1, (size_t)z->nr_pages);
    for (int o = 0; o < 32; o++) {
        z->head[o] = NIL;
        z->nr_free[o] = 0;
    }
    /* The same blocks, pushed in the same order, as bench_buddy's references. */
    while (pfn < z->nr_pages) {
        int order = z->max_order;
        while (order && ((pfn & ((1LL << order) - 1)) || pfn + (1LL << order) > z->nr_pages))
            order--;
        push(z, (int32_t)pfn, order);
        pfn += 1LL << order;
    }
}

static int32_t zone_alloc(zone_t *z, int order)
{
    for (int current = order; current <= z->max_order; current++) {
        int32_t pfn = z->head[current];
        if (pfn == NIL)
            continue;
        unlink_block(z, pfn, current);
        while (current > order) {
            current--;
            push(z, pfn + (1 << current), current);
        }
        return pfn;
    }
    return NIL;
}

static void zone_free(zone_t *z, int32_t pfn, int order)
{
    while (order < z->max_order) {
        int32_t buddy = pfn ^ (1 << order);
        if (buddy >= z->nr_pages || z->free_order[buddy] != order)
            break;
        unlink_block(z, buddy, order);
        pfn &= buddy;
        order++;
    }
    push(z, pfn, order);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "cbuddy: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void read_exact(FILE *f, void *buf, size_t n, const char *what)
{
    if (fread(buf, 1, n, f) != n) {
        fprintf(stderr, "cbuddy: short read of %s\n", what);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cbuddy OPS_FILE REPEAT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    int64_t hdr[8];
    read_exact(f, hdr, sizeof hdr, "the header");
    if (memcmp(&hdr[0], "FSBUDDY1", 8) != 0) {
        fprintf(stderr, "cbuddy: %s: not an operation file\n", argv[1]);
        return 2;
    }
    int64_t nr_pages = hdr[1], nr_ops = hdr[3], nr_prefill = hdr[4], nr_slots = hdr[5];
    int max_order = (int)hdr[2];
    if (nr_pages <= 0 || nr_pages > INT32_MAX || max_order < 0 || max_order > 30 ||
        nr_prefill < 0 || nr_prefill > nr_ops || nr_slots < 0) {
        fprintf(stderr, "cbuddy: %s: bad header\n", argv[1]);
        return 2;
    }
    int8_t *kinds = xmalloc((size_t)nr_ops);
    int8_t *orders = xmalloc((size_t)nr_ops);
    int32_t *slots = xmalloc((size_t)nr_ops * sizeof(int32_t));
    read_exact(f, kinds, (size_t)nr_ops, "kinds");
    read_exact(f, orders, (size_t)nr_ops, "orders");
    read_exact(f, slots, (size_t)nr_ops * sizeof(int32_t), "slots");
    fclose(f);
    for (int64_t i = 0; i < nr_ops; i++) {
        if (slots[i] < 0 || slots[i] >= nr_slots || orders[i] < 0 || orders[i] > max_order) {
            fprintf(stderr, "cbuddy: operation %lld out of range\n", (long long)i);
            return 2;
        }
    }
    int repeat = atoi(argv[2]);
    if (repeat < 1)
        repeat = 1;

    zone_t z;
    z.nr_pages = nr_pages;
    z.max_order = max_order;
    z.next = xmalloc((size_t)nr_pages * sizeof(int32_t));
    z.prev = xmalloc((size_t)nr_pages * sizeof(int32_t));
    z.free_order = xmalloc((size_t)nr_pages);
    int32_t *pfns = xmalloc((size_t)nr_slots * sizeof(int32_t));
    int64_t failed = 0;

    for (int r = 0; r < repeat; r++) {
        zone_init(&z);
        failed = 0;
        for (int64_t i = 0; i < nr_prefill; i++) {
            int32_t pfn = zone_alloc(&z, orders[i]);
            failed += pfn == NIL;
            pfns[slots[i]] = pfn;
        }
        double t0 = cpu_now();
        for (int64_t i = nr_prefill; i < nr_ops; i++) {
            if (kinds[i] == 0) {
                int32_t pfn = zone_alloc(&z, orders[i]);
                failed += pfn == NIL;
                pfns[slots[i]] = pfn;
            } else if (pfns[slots[i]] != NIL) {
                zone_free(&z, pfns[slots[i]], orders[i]);
            }
        }
        double t1 = cpu_now();
        printf("seconds %lld %.9f\n", (long long)(nr_ops - nr_prefill), t1 - t0);
    }
    for (int o = 0; o <= max_order; o++)
        printf("free %d %lld\n", o, (long long)z.nr_free[o]);
    printf("failed %lld\n", (long long)failed);
    uint64_t sum = 1469598103934665603ULL;  /* FNV-1a over (order, pfn) list by list */
    for (int o = 0; o <= max_order; o++) {
        for (int32_t pfn = z.head[o]; pfn != NIL; pfn = z.next[pfn]) {
            sum = (sum ^ (uint64_t)(o + 1)) * 1099511628211ULL;
            sum = (sum ^ (uint64_t)(uint32_t)pfn) * 1099511628211ULL;
        }
    }
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
