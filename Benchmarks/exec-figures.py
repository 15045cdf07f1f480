#!/usr/bin/env python3
"""The exec figures: `producer exec` beside `xargs -P` and GNU parallel, in interleaved rounds.

    apt-get install parallel                      # GNU parallel, for the per-job overhead figure
    swift build -c release                        # producer, worker
    python3 Benchmarks/exec-figures.py [--rounds R] [--jobs N] [--files N] [--no-netns] [--json OUT]

Every round runs every configuration once, in the same order; each figure is the median over
rounds with its min-max, and every ratio is taken within a round before its median is taken.
Times are wall clock for the whole command, as a user sees it (the pool's includes starting
its producer and workers); the pool's own rate inside the run (from its Summary line) is shown
beside it. See exec-figures.md beside this file.

1. per-job overhead: N x `true` with 2 in parallel: `producer --local-workers 2 exec -- true`,
   `xargs -P 2 -n 1 true`, `parallel -j 2 true`.
2. a real workload: `gzip -9 -n -k -f` of F files of 64 KiB with 2 in parallel, pool and
   xargs, each in a directory of its own; the outputs must be byte-identical.
3. the same gzip with one worker process in each of 3 network-namespace hosts (root only;
   deploy/netns/cluster.sh), against the local pool run of the same round.

Python 3.8+ standard library. Every process started here is ended by its PID on failure or
Ctrl-C; the temporary directory and the namespaces are removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOOPBACK = ["--tasks", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*"]
SUMMARY = re.compile(r"Summary: (\d+) tasks, (\d+) failed, ([0-9.]+) s, ([0-9.]+) tasks/s")
CLUSTER = os.path.join(REPO, "deploy", "netns", "cluster.sh")
LIVE: dict[int, subprocess.Popen] = {}


class Failed(Exception):
    pass


def run(argv, *, stdin_text=None, cwd=None, timeout=600):
    """Runs argv to its end; returns (seconds, stdout, stderr). The process is ended on failure."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=cwd, start_new_session=True)
    LIVE[process.pid] = process
    try:
        out, err = process.communicate(stdin_text.encode() if stdin_text is not None else None, timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        LIVE.pop(process.pid, None)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise Failed(f"{' '.join(argv[:6])}... exited {process.returncode}: {err.decode()[-2000:]}")
    return seconds, out.decode(errors="replace"), err.decode(errors="replace")


def pool_rate(stderr):
    match = SUMMARY.search(stderr)
    return float(match.group(4)) if match else float("nan")


def make_files(directory, count):
    """count files of 64 KiB of word-like text (compresses about as logs do), the same every run."""
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
    os.makedirs(directory)
    for index in range(count):
        text = []
        size = 0
        while size < 64 << 10:
            word = rng.choice(words)
            text.append(word)
            size += len(word) + 1
        with open(os.path.join(directory, f"f{index:05}.log"), "w") as fh:
            fh.write(" ".join(text)[: 64 << 10])


def fresh_copy(source, target):
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return sorted(os.path.join(target, name) for name in os.listdir(target))


def digests(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".gz"):
            with open(os.path.join(directory, name), "rb") as fh:
                out[name] = hashlib.sha256(fh.read()).hexdigest()
    return out


class Netns:
    """Three hosts on a bridge, each with one worker process (root only)."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["bash", CLUSTER, "up", "--name", name, "--hosts", "3"], check=True, capture_output=True)
        self.bridge = subprocess.run(["bash", CLUSTER, "addr", "--name", name, "--bridge"], check=True,
                                     capture_output=True, text=True).stdout.strip()

    def gzip(self, binaries, lines, log_dir):
        address = self.bridge
        producer = [os.path.join(binaries, "producer"), "--tasks", f"tcp://{address}:*",
                    "--results", f"tcp://{address}:*", "--events", f"tcp://{address}:*", "--output", "none",
                    "--progress", "never", "--wait-workers", "3", "exec", "--", "gzip", "-9", "-n", "-k", "-f", "{}"]
        started = time.monotonic()
        process = subprocess.Popen(producer, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True, text=True)
        LIVE[process.pid] = process
        try:
            # The producer prints where it bound before it reads its input.
            bound = ""
            while "producer bound" not in bound:
                line = process.stderr.readline()
                if not line:
                    raise Failed("netns producer did not bind")
                bound += line
            endpoints = re.search(r"tasks (\S+), results (\S+), events (\S+)", bound)
            for host in (1, 2, 3):
                subprocess.run(["bash", CLUSTER, "spawn", "--name", self.name, "--host", str(host), "--log",
                                os.path.join(log_dir, f"h{host}.log"), "--", os.path.join(binaries, "worker"),
                                "--tasks", endpoints.group(1), "--results", endpoints.group(2), "--events",
                                endpoints.group(3), "--host-name", f"h{host}", "--allow-exec",
                                "--allow-exec-insecure"], check=True, capture_output=True)
            process.stdin.write("\n".join(lines) + "\n")
            process.stdin.close()
            err = process.stderr.read()
            process.wait(timeout=600)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            LIVE.pop(process.pid, None)
        if process.returncode != 0:
            raise Failed(f"netns run exited {process.returncode}: {err[-2000:]}")
        return time.monotonic() - started, pool_rate(err)

    def down(self):
        subprocess.run(["bash", CLUSTER, "down", "--name", self.name, "--grace", "5"], capture_output=True)


def median_range(values):
    return statistics.median(values), min(values), max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3000, help="jobs of `true` (default 3000)")
    parser.add_argument("--files", type=int, default=2000, help="files of 64 KiB to gzip (default 2000)")
    parser.add_argument("--bin", default=os.path.join(REPO, ".build", "release"))
    parser.add_argument("--no-netns", action="store_true", help="skip the 3-host figure")
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args()

    producer = os.path.join(args.bin, "producer")
    if not os.access(producer, os.X_OK):
        sys.exit(f"no producer at {producer}: swift build -c release")
    parallel = shutil.which("parallel")
    if parallel is None:
        print("GNU parallel is not installed (apt-get install parallel): its column is skipped", file=sys.stderr)
    use_netns = not args.no_netns and os.geteuid() == 0 and shutil.which("ip") is not None

    work = tempfile.mkdtemp(prefix="exec-figures-")
    cluster = None
    rows = {key: [] for key in ["pool_true", "pool_true_rate", "xargs_true", "parallel_true", "pool_gzip",
                                "pool_gzip_rate", "xargs_gzip", "netns_gzip", "netns_gzip_rate"]}
    ratios = {key: [] for key in ["true_vs_xargs", "true_vs_parallel", "gzip_vs_xargs", "netns_vs_local"]}
    try:
        source = os.path.join(work, "source")
        make_files(source, args.files)
        if use_netns:
            cluster = Netns("xf" + str(os.getpid() % 1000))
        numbers = "\n".join(str(i) for i in range(1, args.jobs + 1)) + "\n"
        pool = [producer] + LOOPBACK + ["--local-workers", "2", "--output", "none", "--progress", "never"]
        for round_index in range(1, args.rounds + 1):
            seconds, _, err = run(pool + ["exec", "--", "true"], stdin_text=numbers)
            rows["pool_true"].append(args.jobs / seconds)
            rows["pool_true_rate"].append(pool_rate(err))
            seconds, _, _ = run(["xargs", "-P", "2", "-n", "1", "true"], stdin_text=numbers)
            rows["xargs_true"].append(args.jobs / seconds)
            ratios["true_vs_xargs"].append(rows["pool_true"][-1] / rows["xargs_true"][-1])
            if parallel:
                seconds, _, _ = run([parallel, "-j", "2", "true"], stdin_text=numbers)
                rows["parallel_true"].append(args.jobs / seconds)
                ratios["true_vs_parallel"].append(rows["pool_true"][-1] / rows["parallel_true"][-1])

            files = fresh_copy(source, os.path.join(work, "pool"))
            seconds, _, err = run(pool + ["exec", "--", "gzip", "-9", "-n", "-k", "-f", "{}"],
                                  stdin_text="\n".join(files) + "\n")
            rows["pool_gzip"].append(len(files) / seconds)
            rows["pool_gzip_rate"].append(pool_rate(err))
            files = fresh_copy(source, os.path.join(work, "xargs"))
            seconds, _, _ = run(["xargs", "-P", "2", "-n", "1", "gzip", "-9", "-n", "-k", "-f"],
                                stdin_text="\n".join(files) + "\n")
            rows["xargs_gzip"].append(len(files) / seconds)
            ratios["gzip_vs_xargs"].append(rows["pool_gzip"][-1] / rows["xargs_gzip"][-1])
            pool_out, xargs_out = digests(os.path.join(work, "pool")), digests(os.path.join(work, "xargs"))
            if len(pool_out) != len(files) or pool_out != xargs_out:
                raise Failed(f"gzip outputs differ: {len(pool_out)} pool files, {len(xargs_out)} xargs files")
            if cluster:
                files = fresh_copy(source, os.path.join(work, "netns"))
                seconds, rate = cluster.gzip(args.bin, files, work)
                rows["netns_gzip"].append(len(files) / seconds)
                rows["netns_gzip_rate"].append(rate)
                ratios["netns_vs_local"].append(rows["netns_gzip"][-1] / rows["pool_gzip"][-1])
                if digests(os.path.join(work, "netns")) != xargs_out:
                    raise Failed("netns gzip outputs differ from xargs'")
            print(f"round {round_index}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows.items() if v),
                  file=sys.stderr)
    finally:
        for process in list(LIVE.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        if cluster:
            cluster.down()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{platform.node()}, {os.cpu_count()} CPUs, {args.rounds} rounds, medians (min-max); jobs/s, wall clock")
    names = {
        "pool_true": f"{args.jobs} x true, producer exec, 2 local workers",
        "pool_true_rate": "  the same, the pool's rate inside the run (Summary)",
        "xargs_true": "  xargs -P 2",
        "parallel_true": "  GNU parallel -j 2",
        "pool_gzip": f"gzip -9 of {args.files} x 64 KiB, producer exec, 2 local workers",
        "pool_gzip_rate": "  the same, inside the run",
        "xargs_gzip": "  xargs -P 2",
        "netns_gzip": "  3 netns hosts, 1 worker process each",
        "netns_gzip_rate": "  the same, inside the run",
    }
    for key, values in rows.items():
        if values:
            m, lo, hi = median_range(values)
            print(f"{names[key]:<64} {m:8.0f}  ({lo:.0f}-{hi:.0f})")
    print()
    for key, values in ratios.items():
        if values:
            m, lo, hi = median_range(values)
            print(f"{key:<20} {m:6.2f}  ({lo:.2f}-{hi:.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "ratios": ratios, "rounds": args.rounds, "jobs": args.jobs,
                       "files": args.files}, fh, indent=1)


if __name__ == "__main__":
    main()
