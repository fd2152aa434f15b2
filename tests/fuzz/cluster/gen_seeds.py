#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_mesh_envelope and fuzz_mesh_payload
(tests/fuzz/corpus/...). Hand-encoded protobuf, HMAC as in docs/cluster.md.
Run once from this directory; the outputs are committed."""
import hashlib, hmac, os, struct

def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def f_varint(num, v):
    return varint(num << 3) + varint(v)

def f_bytes(num, b):
    return varint((num << 3) | 2) + varint(len(b)) + b

KEY = b"fuzz-cluster-secret-0123456789"

def envelope(sender, inc, recv, counter, ts, kind, body, key=KEY):
    canon = (b"MABEAM-MESH-1\0" + struct.pack(">IQQQQQIQ", 1, sender, inc, recv, counter, ts,
                                              kind, len(body)) + body)
    mac = hmac.new(key, canon, hashlib.sha256).digest()
    return (f_varint(1, 1) + f_varint(2, sender) + f_varint(3, inc) + f_varint(4, recv) +
            f_varint(5, counter) + f_varint(6, ts) + f_varint(7, kind) + f_bytes(8, body) +
            f_bytes(9, mac))

request = f_varint(1, 7) + f_varint(2, 16) + f_bytes(3, b"hello")
reply = f_varint(1, 7) + f_varint(2, 99) + f_varint(3, 0) + f_bytes(4, b"ok")
hb = f_bytes(1, b"tcp://127.0.0.1:7710") + f_varint(2, 3) + f_varint(3, 1) + f_bytes(4, b"tcp://127.0.0.1:7710")
member = f_varint(1, 1) + f_bytes(2, b"tcp://127.0.0.1:7710")
join_req = f_bytes(1, b"tcp://127.0.0.1:7711")
join_reply = f_bytes(1, member) + f_bytes(1, f_varint(1, 2) + f_bytes(2, b"tls+tcp://10.0.0.2:7710")) + f_varint(2, 3) + f_varint(3, 1)
am = f_bytes(1, b"agent-a") + f_bytes(2, b"agent-b") + f_bytes(3, b"\x01\x02\x03")
batch = f_varint(1, 1) + f_bytes(2, am) + f_bytes(2, am)
ack = f_varint(1, 2)

def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

E = "../corpus/fuzz_mesh_envelope"
write(E, "request", envelope(3, 77, 4, 1, 1700000000000, 1, request))
write(E, "reply", envelope(4, 88, 3, 0, 1700000000000, 2, reply))
write(E, "heartbeat", envelope(3, 77, 4, 2, 1700000000000, 1, f_varint(1, 8) + f_varint(2, 1) + f_bytes(3, hb)))
write(E, "wrong_key", envelope(3, 77, 4, 1, 1700000000000, 1, request, key=b"other-secret-abcdef"))
write(E, "empty", b"")
P = "../corpus/fuzz_mesh_payload"
for i, data in enumerate([request, reply, hb, join_req, join_reply, batch, ack]):
    write(P, "kind%d" % i, bytes([i]) + data)
