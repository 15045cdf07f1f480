#!/usr/bin/env python3
"""The core figures of the pool, side by side with its limits, in interleaved rounds.

    python3 -m pip install -r Benchmarks/peers/requirements.txt   # pyzmq, once
    swift build -c release                                         # producer, worker, bench
    python3 Benchmarks/core-figures.py [--quick] [--rounds R] [--json OUT.json]

Every round runs every configuration once, in the same order; each figure is the median over
rounds with its min-max, and every ratio is taken within a round (both sides measured minutes
apart at most) before its median is taken. See core-figures.md beside this file.

Python 3.8+ standard library, plus pyzmq for the pyzmq pipeline (Benchmarks/peers/run_peers.py,
imported). Every process started here is ended by its PID on failure or Ctrl-C, and the
temporary directory is removed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAIN_PID = os.getpid()
HZ = os.sysconf("SC_CLK_TCK")
LOOPBACK = ["--tasks", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*",
            "--events", "tcp://127.0.0.1:*"]
SUMMARY = re.compile(r"Summary: (\d+) tasks, (\d+) failed, ([0-9.]+) s, ([0-9.]+) tasks/s")
BLOB_BYTES = 64 << 10


class Failed(Exception):
    pass


class Interrupted(BaseException):
    """SIGTERM / SIGHUP in the main process: unwind like Ctrl-C so every finally runs."""


# ---------------------------------------------------------------------------------------------
# Processes: every one started here is registered, and ended by its PID if still running.
# ---------------------------------------------------------------------------------------------

LIVE: dict[int, subprocess.Popen] = {}


def _start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), to tell a PID reused; or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()[19]


def _descendants(pid):
    """Every live descendant of pid as (pid, start time), from /proc's parent links."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                text = fh.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append((int(name), fields[19]))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _alive(pid, started):
    return started is not None and _start_time(pid) == started


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def end_process(proc, graceful=10.0):
    """Ends proc and whatever it started, each by its PID: SIGTERM (the producer then cancels
    its run and stops its local workers), SIGTERM again (it leaves at once), SIGKILL; then any
    descendant still there (recorded before the first signal) the same way."""
    if proc.returncode is not None:
        LIVE.pop(proc.pid, None)
        return
    family = _descendants(proc.pid)
    for sig, wait in ((signal.SIGTERM, graceful), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        _signal(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait()
    LIVE.pop(proc.pid, None)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [(p, s) for p, s in family if _alive(p, s)]
        if not left:
            break
        for p, _ in left:
            _signal(p, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in left):
            time.sleep(0.05)


def end_all():
    for proc in list(LIVE.values()):
        try:
            end_process(proc, graceful=5.0)
        except Exception:  # noqa: BLE001 - keep ending the others
            traceback.print_exc()


def spawn(cmd, stdout=subprocess.DEVNULL, stderr=None):
    # A session of its own: a terminal's Ctrl-C reaches only this script, which ends the child
    # (and so its workers) itself, in order.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            start_new_session=True)
    LIVE[proc.pid] = proc
    return proc


def run_measured(cmd, timeout, stdout_path=None, stderr_path=None):
    """Runs cmd; returns (exit code, own CPU s, tree CPU s, stderr text).

    Own CPU: utime + stime of the process alone, read from /proc/PID/stat while it is a zombie
    (waitid with WNOWAIT: exited, not yet reaped). Tree CPU: wait4's rusage, which also holds
    every descendant that was reaped below it (the producer reaps its worker supervisor, which
    reaps its workers), i.e. the whole pool. See core-figures.md."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = open(stderr_path, "wb")
    try:
        proc = spawn(cmd, stdout=out, stderr=err)
    finally:
        if stdout_path:
            out.close()
        err.close()
    try:
        deadline = time.monotonic() + timeout
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            if time.monotonic() > deadline:
                raise Failed(f"timed out after {timeout:g} s")
            time.sleep(0.02)
        with open(f"/proc/{proc.pid}/stat") as fh:
            text = fh.read()
        fields = text[text.rindex(")") + 2:].split()
        own = (int(fields[11]) + int(fields[12])) / HZ
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        LIVE.pop(proc.pid, None)
        tree = ru.ru_utime + ru.ru_stime
    finally:
        end_process(proc)
    with open(stderr_path, errors="replace") as fh:
        text = fh.read()
    return proc.returncode, own, tree, text


def tail(text, lines=6):
    return " | ".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# The configurations. Each run returns a dict with at least tasks_per_s.
# ---------------------------------------------------------------------------------------------


def keyvalues(line):
    return {k: v for k, _, v in (w.partition("=") for w in line.split()) if _}


def c_limit(ctx, n, window, batch):
    cmd = [ctx.pool_limit, "producer", "tcp", str(n), str(window), str(batch), "2", "poll"]
    res = subprocess_run(cmd, ctx.timeout)
    lines = [line for line in res.stdout.splitlines() if "tasks_per_s=" in line]
    if res.returncode != 0 or not lines:
        raise Failed(f"exit {res.returncode}: {tail(res.stdout + res.stderr)}")
    kv = keyvalues(lines[-1])
    if int(kv["n"]) != n or int(kv["dups"]) or int(kv["missing"]) or int(kv["bad"]):
        raise Failed(f"bad run: {lines[-1]}")
    elapsed = float(kv["elapsed_s"])
    cpu = float(kv["producer_cores"]) * elapsed
    return {"tasks": n, "seconds": elapsed, "tasks_per_s": float(kv["tasks_per_s"]),
            "producer_cpu_s": cpu, "producer_cpu_us_per_task": cpu / n * 1e6,
            "line": lines[-1]}


def subprocess_run(cmd, timeout):
    """subprocess.run, but registered and ended by PID like every other child."""
    out_fd, out_path = tempfile.mkstemp(prefix="out-", dir=CTX.tmp)
    err_fd, err_path = tempfile.mkstemp(prefix="err-", dir=CTX.tmp)
    try:
        with os.fdopen(out_fd, "wb") as out, os.fdopen(err_fd, "wb") as err:
            proc = spawn(cmd, stdout=out, stderr=err)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"timed out after {timeout:g} s")
        finally:
            end_process(proc)
        with open(out_path, errors="replace") as fh:
            stdout = fh.read()
        with open(err_path, errors="replace") as fh:
            stderr = fh.read()
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    finally:
        os.unlink(out_path)
        os.unlink(err_path)


def calib(ctx):
    res = subprocess_run([ctx.pool_limit, "calib"], 60)
    line = next((x for x in res.stdout.splitlines() if x.startswith("calib")), "")
    if res.returncode != 0 or not line:
        return {"error": tail(res.stdout + res.stderr)}
    return {k: float(v) for k, v in keyvalues(line).items()}


def pyzmq_pipeline(ctx, n, chunksize):
    if ctx.peers is None:
        raise Failed(ctx.peers_error)
    try:
        seconds, extra = ctx.peers.run_pyzmq("null", n, 2, chunksize, 0, ctx.timeout, transport="tcp")
    except ctx.peers.Failed as e:
        raise Failed(str(e))
    return {"tasks": n, "seconds": seconds, "tasks_per_s": n / seconds,
            "per_worker_tasks": extra.get("per_worker_tasks")}


def producer(ctx, name, n, args, output="none", journal=False, check_lines=False):
    """One producer run; n is the task count it must report."""
    cmd = [ctx.bin("producer"), "--output", output] + LOOPBACK + args
    journal_path = stdout_path = None
    if journal:
        journal_path = os.path.join(ctx.tmp, f"{name}.journal")
        cmd += ["--journal", journal_path]
    if output != "none":
        stdout_path = os.path.join(ctx.tmp, f"{name}.out")
    stderr_path = os.path.join(ctx.tmp, f"{name}.err")
    try:
        code, own, tree, err = run_measured(cmd, ctx.timeout, stdout_path, stderr_path)
        found = SUMMARY.findall(err)
        if code != 0 or not found:
            raise Failed(f"exit {code}: {tail(err)}")
        tasks, failed, seconds, rate = found[-1]
        if int(tasks) != n or int(failed) != 0:
            raise Failed(f"Summary: {tasks} tasks, {failed} failed (expected {n}, 0)")
        rec = {"tasks": n, "seconds": float(seconds), "tasks_per_s": float(rate),
               "producer_cpu_s": own, "producer_cpu_us_per_task": own / n * 1e6,
               "pool_cpu_s": tree, "pool_cpu_us_per_task": tree / n * 1e6}
        if check_lines and stdout_path:
            with open(stdout_path, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
            rec["output_bytes"] = os.path.getsize(stdout_path)
            if lines != n:
                raise Failed(f"--output {output} wrote {lines} lines, expected {n}")
        if journal_path:
            rec["journal_bytes"] = os.path.getsize(journal_path)
        return rec
    finally:
        for path in (journal_path, stdout_path, stderr_path):
            if path and os.path.exists(path):
                os.unlink(path)


def bench_large(ctx, scale):
    out = os.path.join(ctx.tmp, "bench.json")
    cmd = [ctx.bin("bench"), "--modes", "tcp", "--workloads", "large-64k", "--processes", "2",
           "--threads", "1", "--round-trips", "0", "--scale", f"{scale:g}", "--json", out]
    try:
        res = subprocess_run(cmd, ctx.timeout)
        if res.returncode != 0 or not os.path.exists(out):
            raise Failed(f"exit {res.returncode}: {tail(res.stdout + res.stderr)}")
        with open(out) as fh:
            recs = [r for r in json.load(fh)["records"] if r.get("workload") == "large-64k"]
        if len(recs) != 1 or recs[0].get("failed") or recs[0].get("succeeded") != recs[0].get("tasks"):
            raise Failed(f"unexpected records: {recs}")
        r = recs[0]
        n = r["tasks"]
        return {"tasks": n, "seconds": r["seconds"], "tasks_per_s": r["tasks_per_second"],
                "producer_cpu_s": r["producer_cpu_s"],
                "producer_cpu_us_per_task": r["producer_cpu_s"] / n * 1e6,
                "pool_cpu_s": r["cpu_s"], "pool_cpu_us_per_task": r["cpu_s"] / n * 1e6}
    finally:
        if os.path.exists(out):
            os.unlink(out)


MIXED_TASKS = 1000


def write_lines(path, line, n):
    with open(path, "w") as fh:
        block = line * 1000
        for _ in range(n // 1000):
            fh.write(block)
        fh.write(line * (n % 1000))


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


class Context:
    tmp = None


CTX = Context()


def configurations(ctx, sizes):
    n = sizes["null"]
    s1, s10, blob = sizes["sleep1"], sizes["sleep10"], sizes["blob"]
    local2 = ["--local-workers", "2"]
    sleepers = ["--local-workers", "8", "--worker-threads", "25"]
    # (name, label, function, ideal tasks/s or None)
    return [
        ("c_limit", "C limit, 1,000 in flight, 1/msg",
         lambda: c_limit(ctx, sizes["c"], 1000, 1), None),
        ("c_limit_batch", "C limit, 10,000 in flight, 100/msg",
         lambda: c_limit(ctx, sizes["c"], 10000, 100), None),
        ("pyzmq", "pyzmq Guide pipeline, 1/msg", lambda: pyzmq_pipeline(ctx, sizes["pyzmq"], 1), None),
        ("pyzmq_batch", "pyzmq Guide pipeline, 100/msg",
         lambda: pyzmq_pipeline(ctx, sizes["pyzmq"], 100), None),
        ("ours", "producer --generate, 2 workers",
         lambda: producer(ctx, "ours", n, local2 + ["--generate", str(n)]), None),
        ("ours_batch", "producer --generate --batch 100",
         lambda: producer(ctx, "ours_batch", n, local2 + ["--generate", str(n), "--batch", "100"]), None),
        ("ours_journal", "producer --generate --journal FILE",
         lambda: producer(ctx, "ours_journal", n, local2 + ["--generate", str(n)], journal=True), None),
        ("ours_jsonl", "producer --generate --output jsonl >FILE",
         lambda: producer(ctx, "ours_jsonl", n, local2 + ["--generate", str(n)], output="jsonl",
                          check_lines=True), None),
        ("ours_startup", "producer --generate 2 (start-up + shutdown)",
         lambda: producer(ctx, "ours_startup", 2, local2 + ["--generate", "2"]), None),
        ("sleep1", "sleep 1 ms, 8 procs x 25 threads",
         lambda: producer(ctx, "sleep1", s1, sleepers + ["--input", ctx.sleep1]), 200_000),
        ("sleep10", "sleep 10 ms, 8 procs x 25 threads",
         lambda: producer(ctx, "sleep10", s10, sleepers + ["--input", ctx.sleep10]), 20_000),
        ("blob64k", "blob 64 KiB via producer --input",
         lambda: producer(ctx, "blob64k", blob, local2 + ["--input", ctx.blob]), None),
        # Fair dispatch of mixed lengths: every 10th task 100 ms, the rest 1 ms, 2 one-thread
        # workers; of ideal = the ideal makespan (total work / 2) over the run's.
        ("mixed", "mixed: 10 % 100 ms, 90 % 1 ms, 2 workers",
         lambda: producer(ctx, "mixed", MIXED_TASKS, local2 + ["--input", ctx.mixed]),
         MIXED_TASKS / ((MIXED_TASKS // 10 * 100 + (MIXED_TASKS - MIXED_TASKS // 10)) / 1000 / 2)),
        ("bench_large64k", "blob 64 KiB via bench large-64k (tcp)",
         lambda: bench_large(ctx, sizes["bench_scale"]), None),
    ]


RATIOS = [
    # (name, label, numerator, denominator, key)
    ("ours_vs_pyzmq", "ours / pyzmq pipeline (1/msg)", "ours", "pyzmq", "tasks_per_s"),
    ("ours_batch_vs_pyzmq_batch", "ours batched / pyzmq pipeline 100/msg", "ours_batch",
     "pyzmq_batch", "tasks_per_s"),
    ("ours_vs_c_limit", "ours / C limit (1,000 in flight)", "ours", "c_limit", "tasks_per_s"),
    ("ours_batch_vs_c_limit_batch", "ours batched / C limit batched", "ours_batch",
     "c_limit_batch", "tasks_per_s"),
    # The default batches by credit (up to --batch, 1,000, tasks a message): the issue's "or the
    # default, if it batches".
    ("ours_vs_c_limit_batch", "ours (default batching) / C limit batched", "ours",
     "c_limit_batch", "tasks_per_s"),
    ("journal_vs_plain", "journal / plain (tasks/s)", "ours_journal", "ours", "tasks_per_s"),
    ("jsonl_vs_plain", "jsonl / plain (tasks/s)", "ours_jsonl", "ours", "tasks_per_s"),
    ("journal_vs_plain_cpu", "journal / plain (producer CPU per task)", "ours_journal", "ours",
     "producer_cpu_us_per_task"),
    ("jsonl_vs_plain_cpu", "jsonl / plain (producer CPU per task)", "ours_jsonl", "ours",
     "producer_cpu_us_per_task"),
    ("ours_cpu_vs_c_limit_cpu", "ours / C limit (producer CPU per task)", "ours", "c_limit",
     "producer_cpu_us_per_task"),
    ("blob_input_vs_bench", "blob 64 KiB: producer --input / bench", "blob64k", "bench_large64k",
     "tasks_per_s"),
]


def summarize(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def fmt(x, digits=None):
    if x is None:
        return "-"
    if digits is not None:
        return f"{x:.{digits}f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_range(s, digits=None):
    if not s:
        return "-", "-"
    return fmt(s["median"], digits), f"{fmt(s['min'], digits)}-{fmt(s['max'], digits)}"


def table(head, rows, right):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def load():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def on_signal(signum, _frame):
    if os.getpid() != MAIN_PID:  # a forked pyzmq worker: just leave
        os._exit(128 + signum)
    raise Interrupted(f"signal {signum}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="The pool's core figures beside the C limit and the "
                                             "pyzmq pipeline, in interleaved rounds.")
    ap.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a smoke size: about 10x fewer tasks")
    ap.add_argument("--json", metavar="OUT", help="also write every run and summary as JSON")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, ".build", "release"),
                    help="where producer, worker and bench are (default: REPO/.build/release)")
    ap.add_argument("--limit-source",
                    default=os.path.normpath(os.path.join(REPO, "..", "shared", "limit")),
                    help="pool_limit.c, or its directory (default: REPO/../shared/limit)")
    ap.add_argument("--tasks", type=int, help="tasks per null run (default 1,000,000; 100,000 "
                                              "with --quick)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run only these configurations (names as in the JSON)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run before it fails")
    args = ap.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    if rounds < 1:
        ap.error("--rounds must be at least 1")

    q = args.quick
    n = args.tasks or (100_000 if q else 1_000_000)
    sizes = {
        "null": n, "c": n, "pyzmq": n,
        # ~4 s at the ideal rate (200 threads / task length): 200,000/s and 20,000/s
        "sleep1": 80_000 if q else 800_000,
        "sleep10": 8_000 if q else 80_000,
        "blob": 100 if q else 1_000,
        "bench_scale": 0.5 if q else 5,  # x 3,000 tasks of 64 KiB
    }

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Even where SIGINT came ignored (a background job of a script): an interrupt must still
    # unwind through the clean-up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)

    ctx = CTX
    ctx.timeout = args.timeout
    ctx.bin = lambda name: os.path.join(args.bin_dir, name)
    for name in ("producer", "worker", "bench"):
        if not os.access(ctx.bin(name), os.X_OK):
            sys.exit(f"core-figures.py: no {name} in {args.bin_dir}: build them "
                     "(swift build -c release) or pass --bin-dir")
    src = args.limit_source
    if os.path.isdir(src):
        src = os.path.join(src, "pool_limit.c")
    if not os.path.isfile(src):
        sys.exit(f"core-figures.py: no pool_limit.c at {src}; pass --limit-source")

    sys.path.insert(0, os.path.join(HERE, "peers"))
    try:
        import run_peers  # noqa: E402 - the pyzmq Guide pipeline lives there
        if run_peers.zmq is None:
            raise ImportError("pyzmq is not installed (python3 -m pip install -r "
                              "Benchmarks/peers/requirements.txt)")
        ctx.peers, ctx.peers_error = run_peers, None
    except ImportError as e:
        ctx.peers, ctx.peers_error = None, f"cannot import run_peers: {e}"
        print(f"core-figures.py: {ctx.peers_error}; the pyzmq rows will fail", file=sys.stderr)

    started = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        "started_utc": started.isoformat(timespec="seconds"), "rounds": rounds, "quick": q,
        "sizes": sizes, "bin_dir": args.bin_dir, "limit_source": src,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_start": load(),
    }
    try:
        meta["git_head"] = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"],
                                          capture_output=True, text=True).stdout.strip()
        meta["producer_mtime_utc"] = datetime.datetime.fromtimestamp(
            os.path.getmtime(ctx.bin("producer")), datetime.timezone.utc).isoformat(timespec="seconds")
    except OSError:
        pass
    with open(ctx.bin("producer"), "rb") as fh:
        meta["producer_sha256"] = hashlib.sha256(fh.read()).hexdigest()
    if ctx.peers:
        meta["pyzmq"] = f"{ctx.peers.zmq.__version__} / libzmq {ctx.peers.zmq.zmq_version()}"

    results = {}
    calibs = []
    exit_code = 0
    try:
        ctx.tmp = tempfile.mkdtemp(prefix="core-figures-")
        ctx.pool_limit = os.path.join(ctx.tmp, "pool_limit")
        cc = subprocess_run(["gcc", "-O2", "-Wall", "-o", ctx.pool_limit, src, "-lzmq", "-lpthread"], 120)
        if cc.returncode != 0:
            sys.exit(f"core-figures.py: gcc failed: {cc.stderr}")
        ctx.sleep1 = os.path.join(ctx.tmp, "sleep1.jsonl")
        ctx.sleep10 = os.path.join(ctx.tmp, "sleep10.jsonl")
        ctx.blob = os.path.join(ctx.tmp, "blob.jsonl")
        write_lines(ctx.sleep1, '{"task":"sleep","args":{"ms":1}}\n', sizes["sleep1"])
        write_lines(ctx.sleep10, '{"task":"sleep","args":{"ms":10}}\n', sizes["sleep10"])
        ctx.mixed = os.path.join(ctx.tmp, "mixed.jsonl")
        with open(ctx.mixed, "w") as fh:
            for i in range(MIXED_TASKS):
                fh.write('{"task":"sleep","args":{"ms":%d}}\n' % (100 if i % 10 == 9 else 1))
        write_lines(ctx.blob, json.dumps({"task": "blob", "args": {"data": "x" * BLOB_BYTES}}) + "\n",
                    sizes["blob"])

        configs = configurations(ctx, sizes)
        if args.only:
            unknown = set(args.only) - {c[0] for c in configs}
            if unknown:
                sys.exit(f"core-figures.py: unknown configurations {sorted(unknown)}")
            configs = [c for c in configs if c[0] in args.only]
        for name, label, _, ideal in configs:
            results[name] = {"label": label, "ideal_tasks_per_s": ideal, "by_round": {}, "errors": {}}

        print(f"# core figures: {rounds} round(s), {len(configs)} configurations, "
              f"load average {load()}", file=sys.stderr, flush=True)
        for r in range(rounds):
            cal = calib(ctx)
            cal["round"] = r + 1
            cal["load_average"] = load()
            calibs.append(cal)
            print(f"round {r + 1}/{rounds} calib {cal}", file=sys.stderr, flush=True)
            for name, label, fn, ideal in configs:
                t0 = time.monotonic()
                try:
                    rec = fn()
                except Failed as e:
                    results[name]["errors"][r + 1] = str(e)
                    exit_code = 1
                    print(f"  round {r + 1} {name:<16} FAILED: {e}", file=sys.stderr, flush=True)
                    continue
                except Exception as e:  # noqa: BLE001 - reported; the rest still run
                    traceback.print_exc()
                    results[name]["errors"][r + 1] = f"{type(e).__name__}: {e}"
                    exit_code = 1
                    continue
                if ideal:
                    rec["of_ideal"] = rec["tasks_per_s"] / ideal
                results[name]["by_round"][r + 1] = rec
                cpu = rec.get("producer_cpu_us_per_task")
                print(f"  round {r + 1} {name:<16} {rec['tasks']:>9,} tasks {rec['seconds']:7.3f} s "
                      f"{rec['tasks_per_s']:>12,.0f} tasks/s"
                      + (f"  producer {cpu:.2f} us/task" if cpu is not None else "")
                      + f"  ({time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"core-figures.py: interrupted ({str(e) or 'Ctrl-C'}); ending every process started",
              file=sys.stderr)
        exit_code = 130
    finally:
        end_all()
        if ctx.tmp:
            shutil.rmtree(ctx.tmp, ignore_errors=True)

    # Summaries: per configuration, and ratios taken within each round.
    for name, res in results.items():
        rounds_done = res["by_round"]
        for key in ("tasks_per_s", "seconds", "producer_cpu_us_per_task", "pool_cpu_us_per_task",
                    "of_ideal"):
            values = [rec[key] for rec in rounds_done.values() if rec.get(key) is not None]
            res[key] = summarize(values)
        res["tasks"] = next((rec["tasks"] for rec in rounds_done.values()), None)
    ratios = {}
    for rname, label, num, den, key in RATIOS:
        if num not in results or den not in results:
            continue
        a, b = results[num]["by_round"], results[den]["by_round"]
        values = [a[r][key] / b[r][key] for r in sorted(a) if r in b and b[r].get(key)
                  and a[r].get(key) is not None]
        ratios[rname] = dict(label=label, numerator=num, denominator=den, key=key,
                             **(summarize(values) or {"median": None}))

    rows = []
    for name, res in results.items():
        tps, tps_range = fmt_range(res["tasks_per_s"])
        cpu, cpu_range = fmt_range(res["producer_cpu_us_per_task"])
        pool, _ = fmt_range(res["pool_cpu_us_per_task"])
        ideal = f"{100 * res['of_ideal']['median']:.1f} %" if res["of_ideal"] else ""
        ok = f"{len(res['by_round'])}/{rounds}"
        secs = fmt(res["seconds"]["median"], 3) if res["seconds"] else "-"
        rows.append((name, res["label"], f"{res['tasks']:,}" if res["tasks"] else "-", secs, tps,
                     tps_range, ideal, cpu, cpu_range, pool, ok))
    out = [f"# core figures, {meta['started_utc']}, {rounds} round(s){' (--quick)' if q else ''}, "
           f"git {meta.get('git_head', '?')[:10]}, load average {meta['load_average_start']} -> {load()}",
           table(("config", "what", "tasks", "s", "tasks/s", "min-max", "of ideal", "prod us/task",
                  "min-max", "pool us/task", "ok"), rows, {2, 3, 4, 5, 6, 7, 8, 9, 10}),
           "",
           table(("ratio", "median", "min-max", "per round"),
                 [(v["label"], *fmt_range(v if v["median"] is not None else None, 3),
                   " ".join(fmt(x, 3) for x in v.get("runs", []))) for v in ratios.values()],
                 {1, 2}),
           "",
           "# s, tasks/s, min-max: median and range over rounds (s: the run's own clock, from its "
           "Summary line or key=value line). prod us/task: CPU time of the producer process alone "
           "per task, whole process life (C limit: its timed section only; /proc ticks, 10 ms); "
           "pool us/task: the producer and every worker process it reaped (wait4). "
           "ours_startup: a 2-task run, i.e. the fixed start-up and shutdown inside each Summary "
           "time (its tasks/s means nothing). Ratios: taken within each round, then the median.",
           ]
    for cal in calibs:
        out.append("# calib round {round}: ".format(**cal)
                   + " ".join(f"{k}={v}" for k, v in cal.items() if k not in ("round",)))
    for name, res in results.items():
        for r, err in res["errors"].items():
            out.append(f"# FAILED {name} round {r}: {err}")
    text = "\n".join(out)
    print(text, flush=True)
    meta["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta["load_average_end"] = load()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "calib": calibs, "configurations": results, "ratios": ratios},
                      fh, indent=2, default=str)
            fh.write("\n")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
