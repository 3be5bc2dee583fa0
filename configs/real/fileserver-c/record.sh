#!/bin/bash
# fileserver-c: the shared capture tool, fileserver-a's parameters, on this machine, quiet,
# with the kernel's compaction and direct-reclaim tracepoints recorded beside it
# (trace.txt.gz): what each direct compaction was asked for and how it ended; and, at
# 40, 80, 120 and 160 s, which Normal pfns were free (kpageflags_sampler.py); and every
# fallback allocation from another migratetype's free list (kmem:mm_page_alloc_extfrag).
#   sudo configs/real/fileserver-c/record.sh /work/captures/fileserver-c
# EXTRA_EVENTS adds tracepoints, each SYSTEM:EVENT[:FILTER] (run-4: 2 MiB frees and each
# compact_finished, to see what a direct compaction's success coincides with):
#   EXTRA_EVENTS="kmem:mm_page_free:order==9 compaction:mm_compaction_finished" record.sh OUT
set -e
OUT=${1:-/work/captures/fileserver-c}
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T
mkdir -p "$OUT"
cat /proc/loadavg > "$OUT/loadavg-before.txt"
echo 0 > $T/tracing_on; echo > $T/trace; echo 65536 > $T/buffer_size_kb
echo > $T/set_event
for e in compaction:mm_compaction_try_to_compact_pages compaction:mm_compaction_begin \
         compaction:mm_compaction_end compaction:mm_compaction_suitable \
         compaction:mm_compaction_deferred compaction:mm_compaction_defer_compaction \
         compaction:mm_compaction_migratepages compaction:mm_compaction_kcompactd_wake \
         compaction:mm_compaction_wakeup_kcompactd \
         vmscan:mm_vmscan_direct_reclaim_begin vmscan:mm_vmscan_direct_reclaim_end \
         vmscan:mm_vmscan_wakeup_kswapd kmem:mm_page_alloc_extfrag; do
  echo "$e" >> $T/set_event
done
for e in $EXTRA_EVENTS; do
  IFS=: read -r sys ev filter <<< "$e"
  echo "$sys:$ev" >> $T/set_event
  [ -n "$filter" ] && echo "$filter" > "$T/events/$sys/$ev/filter"
done
cat $T/set_event > "$OUT/events.txt"
for e in $EXTRA_EVENTS; do echo "filter $e" >> "$OUT/events.txt"; done
cat $T/trace_pipe > "$OUT/trace.txt" &
reader=$!
echo 1 > $T/tracing_on
python3 "$(dirname "$0")/kpageflags_sampler.py" "$OUT" 40 80 120 160 > "$OUT/kpageflags.log" &
sampler=$!
python3 /work/shared/tools/capture_dynamic.py "$OUT" --balloon-gib 12 --stream-gib 16 --stream-mib-s 300 \
  --files 200000 --file-size 2048 --create-rate 4000 --delete-at 90 --delete-pct 90 --duration 180 --probe-ms 250
wait $sampler
echo 0 > $T/tracing_on
sleep 1; kill $reader; wait $reader 2>/dev/null || true
cat $T/per_cpu/cpu*/stats | grep -E "^overrun|^dropped" > "$OUT/trace-overruns.txt"
echo > $T/set_event
for e in $EXTRA_EVENTS; do IFS=: read -r sys ev filter <<< "$e"; echo 0 > "$T/events/$sys/$ev/filter"; done
gzip -9 "$OUT/trace.txt"
cat /proc/loadavg > "$OUT/loadavg-after.txt"
echo done
