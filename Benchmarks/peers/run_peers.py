#!/usr/bin/env python3
"""Peer implementations of the Swift pool's workloads, so its figures can sit beside them.

    python3 -m pip install -r Benchmarks/peers/requirements.txt   # pyzmq, once
    python3 Benchmarks/peers/run_peers.py [--quick] [--json OUT.json] [--tasks N] [--repeat R]

Peers (N worker processes each, --workers, default 2):
  static_split            reference, not a pool: each process computes its share locally
  mp_joinablequeue        the lecture's pattern: JoinableQueue of Task objects, Consumer(Process)
                          subclasses, poison pills (None), results on a multiprocessing.Queue
  mp_pool_imap_unordered  Pool(processes=N).imap_unordered(f, tasks, chunksize=1 and 100)
  pyzmq_pipeline          the ZeroMQ Guide's ventilator -> workers -> sink (PUSH/PULL), sink in
                          the ventilator's process; 1 task per message, and 100 (chunksize 100)

Workloads: null (a * b) and cpu (a tight loop calibrated to --cpu-micros per task).
Every run checks its results (count and sum) against the expected ones; a run that does not
match is reported FAILED and gets no speed. See README.md in this directory.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import queue
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
from array import array

try:
    import zmq
except ImportError:  # checked in main(), only if a pyzmq peer is selected
    zmq = None

WORKERS = 2
NULL_TASKS_PIPELINE = 200_000  # pyzmq_pipeline, Pool chunksize 100, static_split
NULL_TASKS_SLOW = 50_000  # JoinableQueue, Pool chunksize 1
CPU_SECONDS = 2.0  # cpu workloads: enough tasks for about this long at the ideal rate
QUICK_DIVISOR = 4  # --quick: null task counts / 4
QUICK_CPU_SECONDS = 0.75
BATCH = 100  # tasks per message/chunk for the batched variants
HWM = 1_000_000  # high-water marks for the pyzmq sockets: never the limit, so it streams


# ---------------------------------------------------------------------------------------------
# Workloads. Every task is two ints (a, b); a is the task's index 0..n-1.
#   null: b = a + 1, result a * b                      (like the Swift pool's `multiply`)
#   cpu:  b = K,     result spin(a, K): K iterations of `acc += i`, i.e. a + K(K-1)/2
# ---------------------------------------------------------------------------------------------


def multiply(a, b):
    return a * b


def spin(a, k):
    """A tight CPython loop of k iterations (10-30 ns each). Returns a + k * (k - 1) / 2."""
    acc = a
    for i in range(k):
        acc += i
    return acc


FUNCS = {"null": multiply, "cpu": spin}


def task_b(workload, i, k):
    return i + 1 if workload == "null" else k


def expected_sum(workload, n, k):
    """The sum of all n results, computed without running the workload."""
    if workload == "null":
        return (n - 1) * n * (n + 1) // 3  # sum of i * (i + 1), i < n
    return n * (n - 1) // 2 + n * (k * (k - 1) // 2)  # sum of i + k(k-1)/2, i < n


def calibrate(micros, rounds=5):
    """Choose K so that one spin(a, K) call takes about `micros` µs in this interpreter.

    Every timing below is the fastest of `rounds` batches of calls (the undisturbed cost, on a
    noisy machine). First the fixed cost of a call (K = 0) and the cost per iteration (K =
    200,000) give K = (target - fixed) / per_iteration; then spin(., K) itself is timed (batches
    of about 20 ms) and K scaled by (target - fixed) / (measured - fixed), until the measured
    time is within 2 % of the target (at most 6 times). Returns (K, measured µs per call).
    Done once per --cpu-micros value in the parent process; workers get K inside each task, so
    every process runs exactly the same loop and the results are known."""

    def per_call(k):
        calls = max(3, min(20_000, int(0.02 / max(micros * 1e-6, 1e-6))))
        best = math.inf
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(calls):
                spin(7, k)
            best = min(best, (time.perf_counter() - t0) / calls)
        return best

    target = micros * 1e-6
    fixed = per_call(0)
    big = 200_000
    best_big = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        spin(7, big)
        best_big = min(best_big, time.perf_counter() - t0)
    per_iter = max(1e-9, (best_big - fixed) / big)
    k = max(1, round((target - fixed) / per_iter))
    measured = per_call(k)
    for _ in range(6):
        if abs(measured - target) <= 0.02 * target or measured <= fixed:
            break
        k = max(1, round(k * max(target - fixed, 0.0) / (measured - fixed)))
        measured = per_call(k)
    return k, measured * 1e6


class Failed(Exception):
    pass


def check(n, got_count, got_sum, workload, k):
    want = expected_sum(workload, n, k)
    if got_count != n or got_sum != want:
        raise Failed(f"wrong results: {got_count} results summing to {got_sum}, "
                     f"expected {n} summing to {want}")


def mp_context():
    # main() sets fork as the start method where there is one (Linux): the same interpreter
    # state in every worker and no re-import of this script. Everything here also works with
    # spawn (macOS, Windows).
    return multiprocessing.get_context()


def _stop(procs):
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)


# ---------------------------------------------------------------------------------------------
# Reference: static_split, not a pool. Each of N processes computes every N-th task locally and
# sends back one sum; no task or result crosses a process boundary. Its tasks/s is what the
# machine can do with N processes at that moment (on a shared VM that can be far from N times
# one process), the ceiling the pools are compared with ("of static").
# ---------------------------------------------------------------------------------------------


def static_worker(idx, workers, n, workload, k, go, out):
    f = FUNCS[workload]
    out.put(("ready", idx))
    go.wait()
    total = 0
    for i in range(idx, n, workers):
        total += f(i, task_b(workload, i, k))
    out.put((idx, total, len(range(idx, n, workers))))


def run_static(workload, n, workers, chunksize, k, timeout):
    go = multiprocessing.Event()
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=static_worker,
                                     args=(i, workers, n, workload, k, go, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for _ in range(workers):
            out.get(timeout=timeout)
        total = 0
        count = 0
        t0 = time.perf_counter()
        go.set()
        for _ in range(workers):
            try:
                _, part, m = out.get(timeout=max(0.01, t0 + timeout - time.perf_counter()))
            except queue.Empty:
                raise Failed("timed out")
            total += part
            count += m
        seconds = time.perf_counter() - t0
        check(n, count, total, workload, k)
        return seconds, {}
    finally:
        _stop(procs)


# ---------------------------------------------------------------------------------------------
# Peer 1: the lecture's JoinableQueue + Consumer(Process) + poison pills
# ---------------------------------------------------------------------------------------------


class Task:
    """The lecture's Task: holds its inputs, computes when called."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __call__(self):
        return self.a * self.b

    def __str__(self):
        return f"{self.a} * {self.b}"


class CpuTask(Task):
    def __call__(self):
        return spin(self.a, self.b)


READY = "ready"


class Consumer(multiprocessing.Process):
    def __init__(self, task_queue, result_queue):
        multiprocessing.Process.__init__(self)
        self.task_queue = task_queue
        self.result_queue = result_queue

    def run(self):
        # One addition to the lecture's loop: say "ready" once, so the timing starts with every
        # consumer running rather than measuring process start-up.
        self.result_queue.put(READY)
        while True:
            next_task = self.task_queue.get()
            if next_task is None:  # poison pill: exit
                self.task_queue.task_done()
                break
            answer = next_task()
            self.task_queue.task_done()
            self.result_queue.put(answer)


def run_joinablequeue(workload, n, workers, chunksize, k, timeout):
    ctx = mp_context()
    tasks = ctx.JoinableQueue()
    results = ctx.Queue()
    consumers = [Consumer(tasks, results) for _ in range(workers)]
    for c in consumers:
        c.start()
    try:
        for _ in range(workers):
            if results.get(timeout=timeout) != READY:
                raise Failed("consumer did not say ready")
        cls = Task if workload == "null" else CpuTask
        total = 0
        count = 0
        t0 = time.perf_counter()
        for i in range(n):
            tasks.put(cls(i, task_b(workload, i, k)))
        for _ in range(workers):
            tasks.put(None)
        deadline = t0 + timeout
        while count < n:
            try:
                total += results.get(timeout=max(0.01, deadline - time.perf_counter()))
            except queue.Empty:
                raise Failed(f"timed out after {count} of {n} results")
            count += 1
        seconds = time.perf_counter() - t0
        tasks.join()
        for c in consumers:
            c.join(timeout)
        check(n, count, total, workload, k)
        return seconds, {}
    finally:
        _stop(consumers)


# ---------------------------------------------------------------------------------------------
# Peer 2: Pool.imap_unordered
# ---------------------------------------------------------------------------------------------


def null_task(t):
    return t[0] * t[1]


def cpu_task(t):
    return spin(t[0], t[1])


def _abort(what, timeout):
    print(f"run_peers.py: {what} did not finish within --timeout {timeout:g} s; aborting",
          file=sys.stderr, flush=True)
    os._exit(3)


def _warm(_):
    time.sleep(0.05)
    return os.getpid()


def run_pool(workload, n, workers, chunksize, k, timeout):
    ctx = mp_context()
    pool = ctx.Pool(processes=workers)
    try:
        pool.map(_warm, range(workers * 2), chunksize=1)  # every worker up before timing
        f = null_task if workload == "null" else cpu_task
        gen = ((i, task_b(workload, i, k)) for i in range(n))
        total = 0
        count = 0
        t0 = time.perf_counter()
        it = pool.imap_unordered(f, gen, chunksize=chunksize)
        if chunksize == 1:
            deadline = t0 + timeout
            while True:
                try:
                    r = it.next(timeout=max(0.01, deadline - time.perf_counter()))
                except StopIteration:
                    break
                except multiprocessing.TimeoutError:
                    raise Failed(f"timed out after {count} of {n} results")
                total += r
                count += 1
        else:
            # With chunksize > 1 imap_unordered returns a plain generator over the chunks, which
            # has no timeout; a watchdog ends the whole program if the run hangs.
            watchdog = threading.Timer(timeout, _abort, (f"pool chunksize {chunksize}", timeout))
            watchdog.daemon = True
            watchdog.start()
            for r in it:
                total += r
                count += 1
            watchdog.cancel()
        seconds = time.perf_counter() - t0
        check(n, count, total, workload, k)
        return seconds, {}
    finally:
        pool.terminate()
        pool.join()


# ---------------------------------------------------------------------------------------------
# Peer 3: pyzmq ventilator -> workers -> sink (the Guide's taskvent / taskwork / tasksink)
# Tasks are '=qq' (16 bytes), results '=q' (8 bytes); batched messages carry `chunk` of each
# back to back. An empty task message tells a worker to stop; it answers b"B" + '=qq'
# (worker index, tasks done). Before timing, each worker sends b"R" on its results socket.
# ---------------------------------------------------------------------------------------------

TASK = struct.Struct("=qq")
RESULT = struct.Struct("=q")
BYE = struct.Struct("=qq")


def zmq_worker(idx, vent_addr, sink_addr, workload, chunk):
    ctx = zmq.Context()
    receiver = ctx.socket(zmq.PULL)
    receiver.setsockopt(zmq.RCVHWM, HWM)
    receiver.connect(vent_addr)
    sender = ctx.socket(zmq.PUSH)
    sender.setsockopt(zmq.SNDHWM, HWM)
    sender.connect(sink_addr)
    sender.send(b"R")
    f = FUNCS[workload]
    done = 0
    if chunk == 1:
        unpack = TASK.unpack
        pack = RESULT.pack
        recv = receiver.recv
        send = sender.send
        while True:
            msg = recv()
            if not msg:
                break
            a, b = unpack(msg)
            send(pack(f(a, b)))
            done += 1
    else:
        while True:
            msg = receiver.recv()
            if not msg:
                break
            pairs = array("q")
            pairs.frombytes(msg)
            out = array("q", map(f, pairs[0::2], pairs[1::2]))
            sender.send(out.tobytes())
            done += len(out)
    sender.send(b"B" + BYE.pack(idx, done))
    receiver.close()
    sender.close(linger=5000)
    ctx.term()


def _handshakes(monitor, want, timeout):
    """Wait until `want` peers have completed the ZMTP handshake with the monitored socket."""
    from zmq.utils.monitor import recv_monitor_message

    got = 0
    deadline = time.monotonic() + timeout
    while got < want:
        left = deadline - time.monotonic()
        if left <= 0 or not monitor.poll(int(left * 1000)):
            raise Failed(f"only {got} of {want} workers connected to the ventilator")
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            got += 1


def run_pyzmq(workload, n, workers, chunksize, k, timeout, transport="tcp"):
    ctx = zmq.Context()
    vent = ctx.socket(zmq.PUSH)
    sink = ctx.socket(zmq.PULL)
    vent.setsockopt(zmq.SNDHWM, HWM)
    sink.setsockopt(zmq.RCVHWM, HWM)
    vent.setsockopt(zmq.LINGER, 0)
    sink.setsockopt(zmq.LINGER, 0)
    monitor = vent.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    tmpdir = None
    if transport == "tcp":
        vent_addr = "tcp://127.0.0.1:%d" % vent.bind_to_random_port("tcp://127.0.0.1")
        sink_addr = "tcp://127.0.0.1:%d" % sink.bind_to_random_port("tcp://127.0.0.1")
    else:
        tmpdir = tempfile.mkdtemp(prefix="peers-")
        vent_addr = f"ipc://{tmpdir}/vent"
        sink_addr = f"ipc://{tmpdir}/sink"
        vent.bind(vent_addr)
        sink.bind(sink_addr)
    mp = mp_context()
    procs = [mp.Process(target=zmq_worker, args=(i, vent_addr, sink_addr, workload, chunksize))
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        # Start only when every worker is connected both ways, so PUSH deals to all of them
        # from the first task (the Guide's "slow joiner" problem).
        ready = 0
        while ready < workers:
            if not sink.poll(int(timeout * 1000)):
                raise Failed(f"only {ready} of {workers} workers said ready")
            if sink.recv() == b"R":
                ready += 1
        _handshakes(monitor, workers, timeout)
        vent.getsockopt(zmq.EVENTS)  # let the socket attach its pipes before the first send

        nmsgs = (n + chunksize - 1) // chunksize
        b_null = workload == "null"
        pack = TASK.pack
        unpack_result = RESULT.unpack
        vent_send = vent.send
        sink_recv = sink.recv
        NOBLOCK = zmq.NOBLOCK
        poller = zmq.Poller()
        poller.register(sink, zmq.POLLIN)
        poller.register(vent, zmq.POLLOUT)

        def message(m):
            if chunksize == 1:
                return pack(m, m + 1 if b_null else k)
            s = m * chunksize
            e = min(n, s + chunksize)
            pairs = array("q", bytes(16 * (e - s)))
            pairs[0::2] = array("q", range(s, e))
            pairs[1::2] = array("q", range(s + 1, e + 1)) if b_null else array("q", [k]) * (e - s)
            return pairs.tobytes()

        sent = 0
        got_msgs = 0
        count = 0
        total = 0
        t0 = time.perf_counter()
        deadline = t0 + timeout
        while got_msgs < nmsgs:
            events = dict(poller.poll(1000))
            if not events:
                if time.perf_counter() > deadline:
                    raise Failed(f"timed out after {count} of {n} results")
                if not all(p.is_alive() for p in procs):
                    raise Failed("a worker process died")
                continue
            if vent in events:
                end = min(nmsgs, sent + 1000)  # a burst, then look at results again
                try:
                    while sent < end:
                        vent_send(message(sent), NOBLOCK)
                        sent += 1
                except zmq.Again:
                    pass
                if sent == nmsgs:
                    poller.unregister(vent)
            if sink in events:
                try:
                    while True:
                        msg = sink_recv(NOBLOCK)
                        got_msgs += 1
                        if chunksize == 1:
                            total += unpack_result(msg)[0]
                            count += 1
                        else:
                            results = array("q")
                            results.frombytes(msg)
                            total += sum(results)
                            count += len(results)
                except zmq.Again:
                    pass
        seconds = time.perf_counter() - t0

        # Stop the workers: PUSH deals one empty message to each; each answers with its count.
        for _ in range(workers):
            vent.send(b"")
        per_worker = {}
        while len(per_worker) < workers and sink.poll(5000):
            msg = sink.recv()
            if msg[:1] == b"B":
                idx, done = BYE.unpack(msg[1:])
                per_worker[idx] = done
        for p in procs:
            p.join(5)
        check(n, count, total, workload, k)
        per = [per_worker.get(i) for i in range(workers)]
        return seconds, {"transport": transport, "per_worker_tasks": per}
    finally:
        _stop(procs)
        vent.disable_monitor()
        monitor.close(0)
        vent.close(0)
        sink.close(0)
        ctx.term()
        if tmpdir:
            for name in ("vent", "sink"):
                try:
                    os.unlink(os.path.join(tmpdir, name))
                except OSError:
                    pass
            os.rmdir(tmpdir)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

PEERS = {
    # name: (function, chunksizes); chunksize None: n / workers, one block per process
    "static_split": (run_static, [None]),
    "mp_joinablequeue": (run_joinablequeue, [1]),
    "mp_pool_imap_unordered": (run_pool, [1, BATCH]),
    "pyzmq_pipeline": (run_pyzmq, [1, BATCH]),
}


def default_tasks(peer, chunksize, workload, micros, workers, quick):
    slow = peer == "mp_joinablequeue" or (peer == "mp_pool_imap_unordered" and chunksize == 1)
    null_n = NULL_TASKS_SLOW if slow else NULL_TASKS_PIPELINE
    if quick:
        null_n //= QUICK_DIVISOR
    if workload == "null":
        return null_n
    seconds = QUICK_CPU_SECONDS if quick else CPU_SECONDS
    n = math.ceil(seconds * workers * 1e6 / micros)
    n = math.ceil(n / (BATCH * workers)) * BATCH * workers if n >= BATCH * workers * 4 else n
    return min(null_n, n)


def _load():
    """The load average, to read the numbers by: other processes take CPU from the peers."""
    try:
        one = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    busy = " (busy machine: expect noisy numbers)" if one >= (os.cpu_count() or 1) else ""
    return f", load average {one:.2f}{busy}"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run the peer worker pools (multiprocessing, pyzmq) on the Swift pool's "
                    "workloads and report medians.")
    ap.add_argument("--quick", action="store_true",
                    help="fewer tasks and --repeat 1 (about 10 s in all)")
    ap.add_argument("--json", metavar="OUT.json", help="also write the records as JSON")
    ap.add_argument("--tasks", type=int, metavar="N",
                    help="tasks per run for every peer and workload (default: per peer, see README)")
    ap.add_argument("--repeat", type=int, metavar="R",
                    help="runs per configuration; the median is reported (default 3; 1 with --quick)")
    ap.add_argument("--workers", type=int, default=WORKERS, help="worker processes (default 2)")
    ap.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS),
                    metavar="PEER", help="peers to run, of " + ", ".join(PEERS) + " (default all)")
    ap.add_argument("--workloads", nargs="+", choices=["null", "cpu"], default=["null", "cpu"],
                    metavar="W", help="null and/or cpu (default both)")
    ap.add_argument("--cpu-micros", nargs="+", type=int, default=[1000], metavar="US",
                    help="µs per cpu task, e.g. 1 100 1000 10000 (default 1000)")
    ap.add_argument("--chunksizes", nargs="+", type=int, metavar="C",
                    help="only these chunksizes (of 1 and 100)")
    ap.add_argument("--transport", choices=["tcp", "ipc"], default="tcp",
                    help="pyzmq_pipeline transport (default tcp loopback)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a run fails")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    if args.workers < 1 or repeat < 1 or (args.tasks is not None and args.tasks < 1):
        ap.error("--workers, --repeat and --tasks must be at least 1")
    if any(us < 1 for us in args.cpu_micros):
        ap.error("--cpu-micros must be at least 1")

    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)
    if "pyzmq_pipeline" in args.peers and zmq is None:
        sys.exit("run_peers.py: pyzmq is not installed; install it with\n"
                 "    python3 -m pip install -r Benchmarks/peers/requirements.txt\n"
                 "(or leave it out: --peers mp_joinablequeue mp_pool_imap_unordered)")

    print(f"# python {platform.python_version()} on {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.workers} workers, "
          + (f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}, "
             f"transport {args.transport}, " if zmq else "")
          + f"start method {mp_context().get_start_method()}, median of {repeat}"
          + _load(), flush=True)

    # (workload label, workload, micros, k, measured µs)
    workloads = []
    if "null" in args.workloads:
        workloads.append(("null", "null", None, 0, None))
    if "cpu" in args.workloads:
        for us in args.cpu_micros:
            k, measured = calibrate(us)
            print(f"# cpu {us} µs: K = {k:,} loop iterations, {measured:.2f} µs per task "
                  f"measured in this process", flush=True)
            workloads.append((f"cpu {us}us", "cpu", us, k, measured))

    configs = []
    for label, workload, us, k, measured in workloads:
        for peer in [p for p in PEERS if p in args.peers]:
            fn, chunksizes = PEERS[peer]
            for cs in chunksizes:
                if args.chunksizes and cs is not None and cs not in args.chunksizes:
                    continue
                n = args.tasks or default_tasks(peer, cs, workload, us, args.workers, args.quick)
                if cs is None:
                    cs = math.ceil(n / args.workers)
                configs.append(dict(peer=peer, fn=fn, chunksize=cs, label=label,
                                    workload=workload, micros=us, k=k, measured=measured, n=n,
                                    runs=[], seconds=[], by_round={}, extra={},
                                    error=None))

    # Rounds: every configuration once per round, so slow drifts of a noisy machine are spread
    # over all of them rather than landing on one.
    for r in range(repeat):
        for c in configs:
            if c["error"]:
                continue
            kwargs = {"transport": args.transport} if c["peer"] == "pyzmq_pipeline" else {}
            try:
                seconds, extra = c["fn"](c["workload"], c["n"], args.workers, c["chunksize"],
                                         c["k"], args.timeout, **kwargs)
            except Exception as e:  # noqa: BLE001 - reported, the rest still run
                c["error"] = f"{type(e).__name__}: {e}"
                if not isinstance(e, Failed):
                    traceback.print_exc()
                print(f"FAILED {c['peer']} chunksize {c['chunksize']} {c['label']}: {c['error']}",
                      file=sys.stderr)
                continue
            c["seconds"].append(seconds)
            c["runs"].append(c["n"] / seconds)
            c["by_round"][r] = c["n"] / seconds
            c["extra"] = extra
            per = extra.get("per_worker_tasks")
            if per and (None in per or min(per) < 0.5 * c["n"] / args.workers):
                print(f"note: {c['peer']} chunksize {c['chunksize']} {c['label']}: "
                      f"uneven split over workers {per}", file=sys.stderr)
            print(f"  round {r + 1}/{repeat} {c['peer']:<24} chunksize {c['chunksize']:<4}"
                  f"{c['label']:<12}{c['n']:>9,} tasks {seconds:8.3f} s {c['n'] / seconds:>12,.0f}"
                  " tasks/s", file=sys.stderr, flush=True)

    statics = {c["label"]: c for c in configs if c["peer"] == "static_split" and not c["error"]}
    records = []
    rows = []
    for c in configs:
        rec = {"peer": c["peer"], "workload": c["workload"], "workers": args.workers,
               "chunksize": c["chunksize"], "tasks": c["n"]}
        if c["workload"] == "cpu":
            rec["cpu_micros"] = c["micros"]
            rec["cpu_iterations"] = c["k"]
            rec["cpu_micros_measured"] = round(c["measured"], 3)
        if c["error"]:
            rec.update(seconds=None, tasks_per_second=None, runs=[round(x) for x in c["runs"]],
                       error=c["error"])
        else:
            rec.update(seconds=round(statistics.median(c["seconds"]), 6),
                       tasks_per_second=round(statistics.median(c["runs"])),
                       runs=[round(x) for x in c["runs"]])
        if "transport" in c["extra"]:
            rec["transport"] = c["extra"]["transport"]
        records.append(rec)
        if c["error"]:
            rows.append((c["peer"], str(c["chunksize"]), c["label"], f"{c['n']:,}", "-",
                         "FAILED", c["error"][:40], "", ""))
            continue
        tps = rec["tasks_per_second"]
        ideal = ""
        if c["workload"] == "cpu":
            ideal = f"{100 * tps / (args.workers * 1e6 / c['measured']):.0f} %"
        of_static = ""
        static = statics.get(c["label"])
        if static and c is not static and c["workload"] == "cpu":
            ratios = [c["by_round"][r] / static["by_round"][r]
                      for r in c["by_round"] if r in static["by_round"]]
            if ratios:
                of_static = f"{100 * statistics.median(ratios):.1f} %"
                rec["of_static"] = round(statistics.median(ratios), 4)
        rows.append((c["peer"], str(c["chunksize"]), c["label"], f"{c['n']:,}",
                     f"{rec['seconds']:.3f}", f"{tps:,}",
                     " ".join(f"{x:,.0f}" for x in c["runs"]), of_static, ideal))

    head = ("peer", "chunksize", "workload", "tasks", "median s", "median tasks/s",
            "runs (tasks/s)", "of static", "of ideal")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    right = {1, 3, 4, 5, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print()
    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    if statics:
        print("# of static (cpu): median over rounds of tasks/s / static_split's tasks/s in the "
              "same round (static_split: each process computes its share locally, nothing sent)")
    if any(c["workload"] == "cpu" for c in configs):
        print(f"# of ideal: tasks/s / ({args.workers} x 1e6 / µs per task measured in "
              f"calibration), i.e. {args.workers} processes each as fast as one alone")

    print(f"# finished{_load()}")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=2)
            fh.write("\n")
    return 1 if any(c["error"] for c in configs) else 0


if __name__ == "__main__":
    sys.exit(main())
