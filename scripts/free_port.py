#!/usr/bin/env python3
"""scripts/free_port.py: print a TCP port on 127.0.0.1 that nobody listens
on right now, chosen at random below the kernel's ephemeral range, as
mb_test_free_port (tests/unit/mb_test.h) does. A port from bind(port 0)
is an ephemeral one, which any outgoing connection of a process running
beside ours may take as its source port before our daemon binds it.
Exits 1 with a message when 200 tries found none. Used by the integration
tests (tests/integration/daemon/lib.sh) and the benchmarks."""
import random
import socket
import sys


def main():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    for _ in range(200):
        port = random.randrange(12000, lo - 64)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        print(port)
        return 0
    print("free_port: no free port found", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
