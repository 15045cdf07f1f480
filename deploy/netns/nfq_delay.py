#!/usr/bin/env python3
"""Delay packets with NFQUEUE: a stand-in for `tc netem delay` on kernels built without sch_netem.

cluster.sh starts one of these inside a host's network namespace and sends that namespace's
traffic on eth0 (both directions) to the queue with iptables (mangle OUTPUT -o eth0 and mangle
PREROUTING -i eth0, `-j NFQUEUE --queue-num Q --queue-bypass`). Each packet is held for
DELAY +/- JITTER milliseconds and then accepted; order is kept (a packet is never released
before one queued ahead of it), as netem does when it has a rate. With --queue-bypass, packets
pass undelayed while no process is bound to the queue, so stopping this process never blocks
the link.

Only the standard library: it speaks nfnetlink_queue over a raw netlink socket.
"""

import argparse
import collections
import errno
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT_BATCH = 3
NFQNL_MSG_CONFIG = 2
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NFQA_CFG_F_GSO = 4
NF_ACCEPT = 1
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def attr(kind, data):
    pad = (4 - len(data) % 4) % 4
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * pad


class Queue:
    def __init__(self, num):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:  # root: exceed rmem_max so a burst of packets never overflows the socket
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        except OSError:
            pass
        self.sock.bind((0, 0))

    def _send(self, msg_type, attrs, flags=NLM_F_REQUEST):
        self.seq += 1
        body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", self.num) + attrs
        hdr = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, self.seq, 0)
        self.sock.send(hdr + body)
        return self.seq

    def configure(self, attrs):
        seq = self._send(NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, mseq, _pid = struct.unpack_from("=IHHII", data, off)
                if kind == NLMSG_ERROR and mseq == seq:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return
                off += (length + 3) & ~3

    def bind(self, maxlen):
        self.configure(attr(NFQA_CFG_CMD, struct.pack(">BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)))
        self.configure(attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)))
        self.configure(attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", maxlen)))
        flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO
        self.configure(attr(NFQA_CFG_MASK, struct.pack(">I", flags)) + attr(NFQA_CFG_FLAGS, struct.pack(">I", flags)))

    def unbind(self):
        try:
            self._send(NFQNL_MSG_CONFIG, attr(NFQA_CFG_CMD, struct.pack(">BxH", NFQNL_CFG_CMD_UNBIND, socket.AF_INET)))
        except OSError:
            pass

    def accept_upto(self, packet_id):
        """Accept every queued packet whose id is <= packet_id (ids grow in queue order)."""
        self._send(NFQNL_MSG_VERDICT_BATCH, attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id)))

    def packet_ids(self):
        """Read what is ready on the socket; yield the id of each queued packet."""
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    continue
                raise
            off = 0
            while off + 20 <= len(data):
                length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    a = off + 20
                    end = off + length
                    while a + 4 <= end:
                        alen, akind = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if akind & 0x3FFF == NFQA_PACKET_HDR:
                            yield struct.unpack_from(">I", data, a + 4)[0]
                            break
                        a += (alen + 3) & ~3
                off += (length + 3) & ~3


class Stop(Exception):
    pass


def _stop(*_):
    raise Stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queue", type=int, required=True, help="NFQUEUE number")
    p.add_argument("--delay-ms", type=float, required=True, help="delay added to each packet")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +/- jitter")
    p.add_argument("--maxlen", type=int, default=65536, help="packets the kernel may hold")
    p.add_argument("--ready-file", help="create this file once bound to the queue")
    args = p.parse_args()

    q = Queue(args.queue)
    q.bind(args.maxlen)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    print(f"nfq_delay: queue {args.queue}, delay {args.delay_ms} ms, jitter {args.jitter_ms} ms", flush=True)

    delay = args.delay_ms / 1000.0
    jitter = args.jitter_ms / 1000.0
    held = collections.deque()  # (release time, packet id), release times non-decreasing
    last_release = 0.0
    last_id = None
    poller = select.poll()
    poller.register(q.sock, select.POLLIN)
    try:
        while True:
            now = time.monotonic()
            due = None
            while held and held[0][0] <= now:
                due = held.popleft()[1]
            if due is not None:
                q.accept_upto(due)
            timeout = None if not held else max(0.0, held[0][0] - time.monotonic()) * 1000.0
            events = poller.poll(timeout if timeout is None else max(timeout, 0.05))
            if not events:
                continue
            now = time.monotonic()
            for pid in q.packet_ids():
                d = delay + (random.uniform(-jitter, jitter) if jitter else 0.0)
                release = max(now + max(d, 0.0), last_release)
                last_release = release
                last_id = pid
                held.append((release, pid))
    except Stop:
        pass
    # Let whatever is still held through before leaving (the kernel would drop it on close).
    if last_id is not None:
        try:
            q.accept_upto(last_id)
        except OSError:
            pass
    q.unbind()
    return 0


if __name__ == "__main__":
    sys.exit(main())
