#!/bin/bash
# How the real runs here were recorded (as root, on this project's machine, nothing else
# running): each from the same start, caches dropped and memory compacted first.
#   configs/real/gupta-here/record.sh pinned0 pinned01 any any any any any any
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
n=0
for recipe in "$@"; do
  n=$((n + 1))
  sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory; sleep 3
  fragsim run "$here/$recipe.yaml" --real --workdir "$work" --no-plots \
    --out "real-$recipe-$n"
done
rmdir "$work"
