#!/bin/sh
# Instructions per null task, producer and worker, counted by callgrind (repeatable whatever
# else the machine does). Usage: Benchmarks/callgrind-null.sh [BIN_DIR] [TASKS] [THREADS]
# BIN_DIR holds release `producer` and `worker` (default .build/release); TASKS default 100000;
# THREADS: worker threads in its one process (default 1; more uses the shared task link).
# valgrind 3.19 cannot read Swift's DWARF 5, so it runs stripped copies.
set -eu
bin=${1:-.build/release}
tasks=${2:-100000}
threads=${3:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for b in producer worker; do strip --strip-debug -o "$work/$b" "$bin/$b"; done
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
# Each side under callgrind in turn, the other at full speed; ipc, one worker process.
measure() {
    side=$1
    dir="$work/ipc-$side"
    mkdir -p "$dir"
    cg="valgrind --tool=callgrind --callgrind-out-file=$work/$side.%p.out"
    if [ "$side" = producer ]; then p="$cg"; w=""; else p=""; w="$cg --trace-children=yes"; fi
    $p "$work/producer" --ipc "$dir" --wait-workers 1 --generate "$tasks" --output none 2>"$work/$side.err" &
    producer=$!
    $w "$work/worker" --ipc "$dir" --processes 1 --threads "$threads" 2>/dev/null &
    worker=$!
    wait $producer
    wait $worker || true
    grep -q "Summary: $tasks tasks, 0 failed" "$work/$side.err" || { tail -3 "$work/$side.err"; exit 1; }
    sum=0
    for f in "$work"/$side.*.out; do sum=$((sum + $(total "$f"))); done
    echo "$side: $((sum / tasks)) instructions per task"
    rm -f "$work"/$side.*.out
}
measure producer
measure worker
