#!/bin/bash
# What kswapd's eviction of clean page cache costs per folio and per page, on this
# machine's kernel. For each mode a reader streams a file of FILE_GIB GiB twice through
# memory (reader.py); kswapd0's CPU time comes from /proc/PID/schedstat (ns), and the
# pages it scanned and reclaimed from /proc/vmstat (pgscan_kswapd, pgsteal_kswapd),
# before and after. The folios it deleted from the page cache, with their orders, are
# traced (filemap:mm_filemap_delete_from_page_cache, filtered to kswapd0's pid): over
# the whole run for the readahead modes (delete_trace.txt.gz), and for one second in
# the middle of the order-0 mode, whose 10 M events would cost kswapd more than the
# sample tells; delete_orders.txt counts them by order. (This
# kernel has no CONFIG_HIST_TRIGGERS, so nothing counts them in the kernel.) Modes:
#   ra8192  read_ahead_kb 8192 (the fileserver captures' disk): 2 MiB folios
#   ra128   read_ahead_kb 128 (the kernel's default): folios up to 128 KiB
#   random  POSIX_FADV_RANDOM: force_page_cache_ra reads in order-0 folios
# The file is fallocate'd (unwritten extents read as zeros, so no disk I/O: what is
# measured is memory management, not the disk). read_ahead_kb is put back, tracing
# turned off and the file removed on exit. Run as root with nothing else running:
#   bash configs/real/reclaim-cost/record.sh configs/real/reclaim-cost/run-1 [FILE_GIB]
set -euo pipefail
OUT=${1:?usage: record.sh OUTDIR [FILE_GIB]}
GIB=${2:-32}
HERE=$(cd "$(dirname "$0")" && pwd)
T=/sys/kernel/tracing
SRC=$(findmnt -no SOURCE -T /var/tmp)
DEV=$(lsblk -no PKNAME "$SRC" 2>/dev/null || true)
DEV=${DEV:-$(basename "$SRC")}
RA=/sys/block/$DEV/queue/read_ahead_kb
FILE=/var/tmp/fragcap/reclaim-cost.img
mountpoint -q $T || mount -t tracefs nodev $T
mkdir -p "$OUT" /var/tmp/fragcap
RA0=$(cat "$RA")
ON0=$(cat $T/tracing_on)
EV=$T/events/filemap/mm_filemap_delete_from_page_cache
PIPE=
cleanup() {
    echo "$RA0" > "$RA"
    echo 0 > $EV/enable
    echo 0 > $EV/filter
    echo "$ON0" > $T/tracing_on
    [ -n "$PIPE" ] && kill "$PIPE" 2>/dev/null || true
    rm -f "$FILE"
}
trap cleanup EXIT
KPID=$(pgrep -x kswapd0)
{
    echo "date: $(date -u +%FT%TZ)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
    echo "memory: $(grep MemTotal /proc/meminfo | awk '{print $2}') kB"
    echo "file: $FILE, $GIB GiB, fallocate'd; device $DEV, read_ahead_kb was $RA0"
    echo "kswapd0 pid: $KPID"
    echo "reads: 1 MiB, two passes"
} > "$OUT/params.txt"
fallocate -l "${GIB}G" "$FILE"
echo 1 > $T/tracing_on
for mode in ra8192 ra128 random; do
    d=$OUT/$mode
    mkdir -p "$d"
    case $mode in
        ra8192) echo 8192 > "$RA" ;;
        ra128) echo 128 > "$RA" ;;
        random) echo 8192 > "$RA" ;;
    esac
    sync
    echo 3 > /proc/sys/vm/drop_caches
    sleep 2
    echo > $T/trace
    echo "common_pid == $KPID" > $EV/filter
    cat $T/trace_pipe > "$d/delete_trace.txt" &
    PIPE=$!
    cat /proc/$KPID/schedstat > "$d/kswapd_schedstat.before"
    cat /proc/vmstat > "$d/vmstat.before"
    if [ "$mode" = random ]; then
        python3 "$HERE/reader.py" "$FILE" 2 random > "$d/reader.txt" &
        R=$!
        sleep 20
        echo 1 > $EV/enable
        sleep 1
        echo 0 > $EV/enable
        wait $R
    else
        echo 1 > $EV/enable
        python3 "$HERE/reader.py" "$FILE" 2 > "$d/reader.txt"
        echo 0 > $EV/enable
    fi
    cat /proc/$KPID/schedstat > "$d/kswapd_schedstat.after"
    cat /proc/vmstat > "$d/vmstat.after"
    sleep 1
    kill $PIPE
    wait $PIPE 2>/dev/null || true
    PIPE=
    # The folios by order; the order-0 mode's trace (10 MB a second) is kept as that
    # count only, the others compressed.
    awk 'match($0, /order=[0-9]+/) {n[substr($0, RSTART + 6, RLENGTH - 6)]++}
         END {for (o in n) print o, n[o]}' "$d/delete_trace.txt" | sort -n > "$d/delete_orders.txt"
    if [ "$mode" = random ]; then rm "$d/delete_trace.txt"; else gzip -f "$d/delete_trace.txt"; fi
    echo "$mode: $(cat "$d/reader.txt")"
done
