#!/bin/sh
# Instructions per null task, producer and worker, counted by callgrind (repeatable whatever
# else the machine does). Usage: Benchmarks/callgrind-null.sh [BIN_DIR] [TASKS] [THREADS]
# BIN_DIR holds release `producer` and `worker` (default .build/release); TASKS default 100000;
# THREADS: worker threads in its one process (default 1; more uses the shared task link).
# Each side runs twice, with TASKS and 3 x TASKS tasks: the difference over 2 x TASKS is the
# steady cost of a task, without start-up (symbol binding, metadata) spread over it.
# valgrind 3.19 cannot read Swift's DWARF 5, so it runs stripped copies.
set -eu
bin=${1:-.build/release}
tasks=${2:-100000}
threads=${3:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for b in producer worker; do strip --strip-debug -o "$work/$b" "$bin/$b"; done
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
# Instructions of one side over a run of $2 tasks; the other side at full speed; ipc, one worker
# process.
run() {
    side=$1
    count=$2
    dir="$work/ipc-$side-$count"
    mkdir -p "$dir"
    cg="valgrind --tool=callgrind --callgrind-out-file=$work/$side.$count.%p.out"
    if [ "$side" = producer ]; then p="$cg"; w=""; else p=""; w="$cg --trace-children=yes"; fi
    $p "$work/producer" --ipc "$dir" --wait-workers 1 --generate "$count" --output none 2>"$work/$side.err" &
    producer=$!
    $w "$work/worker" --ipc "$dir" --processes 1 --threads "$threads" 2>/dev/null &
    worker=$!
    wait $producer
    wait $worker || true
    grep -q "Summary: $count tasks, 0 failed" "$work/$side.err" || { tail -3 "$work/$side.err" >&2; exit 1; }
    sum=0
    for f in "$work"/$side.$count.*.out; do sum=$((sum + $(total "$f"))); done
    rm -f "$work"/$side.$count.*.out
    echo $sum
}
for side in producer worker; do
    small=$(run $side "$tasks")
    large=$(run $side $((3 * tasks)))
    echo "$side: $(((large - small) / (2 * tasks))) instructions per task (steady; $((small / tasks)) with start-up over $tasks)"
done
