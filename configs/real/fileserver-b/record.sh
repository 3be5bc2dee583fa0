#!/bin/bash
# fileserver-b: the shared capture tool, same parameters as fileserver-a, on this machine, quiet.
set -e
OUT=/work/captures/fileserver-b
D=/sys/kernel/mm/damon/admin/kdamonds/0
mkdir -p $OUT
damon() { echo update_schemes_stats > $D/state; for f in $D/contexts/0/schemes/0/stats/*; do echo "$(basename $f) $(cat $f)"; done; }
damon > $OUT/damon-before.txt
cat /proc/loadavg > $OUT/loadavg-before.txt
python3 /work/shared/tools/capture_dynamic.py $OUT --balloon-gib 12 --stream-gib 16 --stream-mib-s 300 \
  --files 200000 --file-size 2048 --create-rate 4000 --delete-at 90 --delete-pct 90 --duration 180 --probe-ms 250
damon > $OUT/damon-after.txt
cat /proc/loadavg > $OUT/loadavg-after.txt
echo done
