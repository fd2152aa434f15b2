#!/usr/bin/env python3
"""tests/bench/cluster/disk_probe.py [DIR]: what one durable 4 KiB append
costs on this host's disk, as a raft log append pays it: O_DIRECT|O_DSYNC
pwrite of 4 KiB at the next offset, 200 writes, each after REST_MS (default
30, the fan-out's gap) of rest, into a file prepared two ways: with
posix_fallocate (unwritten extents, as libraft 0.15 prepares segments) and
written with zeros first (overwrites). Two sittings each, alternating. One
JSON line per sitting: p50/p90/p99/max in microseconds. DIR defaults to
/tmp (the cluster suite's data lives there). docs/BENCHMARKS.md, suite
`cluster`, session 12."""
import json
import mmap
import os
import sys
import time

SIZE = 8 << 20
N = 200


def sitting(path, prep, rest_s):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT | os.O_DSYNC, 0o600)
    try:
        if prep == "fallocate":
            os.posix_fallocate(fd, 0, SIZE)
        else:
            zeros = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT needs
            for off in range(0, SIZE, 1 << 20):
                os.pwrite(fd, zeros, off)
            os.fsync(fd)
        buf = mmap.mmap(-1, 4096)
        buf.write(b"x" * 4096)
        lat = []
        for i in range(N):
            time.sleep(rest_s)  # the rest before each write is the load pattern
            t = time.perf_counter()
            os.pwrite(fd, buf, i * 4096)
            lat.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    pick = lambda p: round(lat[min(N - 1, int(N * p / 100))])
    return {"prep": prep, "rest_ms": rest_s * 1000, "writes": N, "p50_us": pick(50),
            "p90_us": pick(90), "p99_us": pick(99), "max_us": round(lat[-1])}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    rest_s = float(os.environ.get("REST_MS", "30")) / 1000.0
    path = os.path.join(d, "mb-disk-probe.%d" % os.getpid())
    for _ in range(2):
        for prep in ("fallocate", "zeroed"):
            print(json.dumps(sitting(path, prep, rest_s)), flush=True)


if __name__ == "__main__":
    main()
