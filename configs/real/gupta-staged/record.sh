#!/bin/bash
# The shared compaction anchor's recipe, run for real phase by phase with nothing of
# fragsim running (as root, nothing else running): one run per argument, each into
# run-NAME/. Each run starts after sync, drop_caches and compact_memory, then:
#   0-idle snapshot; fill MiB (staged.c); 1-filled; free 3 of 4; 2-freed;
#   echo 1 > /proc/sys/vm/compact_memory (from a shell, which reports its CPU); 3-compacted;
#   the program exits; 4-released.
# A snapshot is buddyinfo, pagetypeinfo, zoneinfo and debugfs extfrag's two indices, read
# together; log.txt has the program's CPU at each phase's start and end, and the shell's.
#   configs/real/gupta-staged/record.sh 12288 r1 r2 r3 ...
# until=PAGES after MiB stops the fill once Normal's nr_free_pages is at most PAGES:
#   configs/real/gupta-staged/record.sh 21504 until=20163 low1 low2
set -e
here=$(cd "$(dirname "$0")" && pwd)
mib=$1; shift
until=""; case "$1" in until=*) until=${1#until=}; shift;; esac
dbg=/sys/kernel/debug
[ -d $dbg/extfrag ] || mount -t debugfs none $dbg
cc -O2 -o /tmp/staged "$here/staged.c"
snap() {  # snap DIR NAME
  for f in buddyinfo pagetypeinfo zoneinfo; do cat /proc/$f > "$1/$2.$f"; done
  cat $dbg/extfrag/unusable_index > "$1/$2.unusable_index"
  cat $dbg/extfrag/extfrag_index > "$1/$2.extfrag_index"
}
for name in "$@"; do
  out="$here/run-$name"; mkdir "$out"
  sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory; sleep 5
  uname -r > "$out/kernel"
  snap "$out" 0-idle
  coproc P { /tmp/staged "$mib" $until; }
  read -r line <&"${P[0]}"; echo "$line" >> "$out/log.txt"
  snap "$out" 1-filled
  echo go >&"${P[1]}"
  read -r line <&"${P[0]}"; echo "$line" >> "$out/log.txt"
  snap "$out" 2-freed
  bash -c 't0=$(date +%s.%N); echo 1 > /proc/sys/vm/compact_memory; t1=$(date +%s.%N);
           echo "compact cpu $(cut -d" " -f39 /proc/$$/stat) seconds $(echo "$t1 - $t0" | bc)"' \
    >> "$out/log.txt"
  snap "$out" 3-compacted
  echo go >&"${P[1]}"
  read -r line <&"${P[0]}"; echo "$line" >> "$out/log.txt"
  wait "$P_PID" 2>/dev/null || true
  snap "$out" 4-released
  cat "$out/log.txt"
done
