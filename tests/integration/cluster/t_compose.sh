#!/usr/bin/env bash
# docker-compose.yml cannot be run here (no Docker engine), so check what
# can be checked: every service's environment (anchors merged) is accepted
# by `mabeamd --check-config`; node ids are unique; mesh and raft addresses
# sit on the service's own IPv4 address; exactly one node bootstraps and
# every seed is another service's mesh address; the Dockerfile's ports and
# defaults match.
. "$(dirname "$0")/../daemon/lib.sh"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
python3 -c 'import yaml' 2>/dev/null || { echo "skip: no python3 yaml"; exit $SKIP; }

python3 - "$ROOT/docker-compose.yml" "$T" <<'PY' || fail "compose file inconsistent"
import sys, yaml, os
doc = yaml.safe_load(open(sys.argv[1]))
svcs = doc["services"]
assert len(svcs) == 3, "want 3 services"
ids, mesh, boot = set(), {}, []
for name, s in svcs.items():
    env = {k: str(v) for k, v in s["environment"].items()}
    ip = s["networks"]["mabeam"]["ipv4_address"]
    assert env["MABEAM_NODE_ID"] not in ids, "duplicate node id"
    ids.add(env["MABEAM_NODE_ID"])
    assert env["MABEAM_MESH_ADDRESS"].split(":")[0] == ip, name + ": mesh address not its IP"
    assert env["MABEAM_RAFT_ADDRESS"].split(":")[0] == ip, name + ": raft address not its IP"
    assert any(p.endswith(":7700") for p in s["ports"]), name + ": API port"
    mesh[name] = env["MABEAM_MESH_ADDRESS"]
    if env.get("MABEAM_SEEDS", "") == "":
        boot.append(name)
    with open(os.path.join(sys.argv[2], name + ".env"), "w") as f:
        for k, v in env.items():
            v = v.replace("${MABEAM_API_TOKEN:?set MABEAM_API_TOKEN}", "test-token-0123456789")
            v = v.replace("${MABEAM_CLUSTER_SECRET:?set MABEAM_CLUSTER_SECRET}", "0123456789abcdef0123")
            f.write("%s=%s\n" % (k, v))
assert len(boot) == 1, "exactly one bootstrap node, got %r" % boot
for name, s in svcs.items():
    seeds = [x for x in str(s["environment"].get("MABEAM_SEEDS", "")).split(",") if x]
    for x in seeds:
        assert x in mesh.values() and x != mesh[name], name + ": bad seed " + x
PY
for f in "$T"/*.env; do
    name=$(basename "$f" .env)
    rc=0
    # The container's defaults (Dockerfile ENV) plus the service's environment.
    env -i PATH="$PATH" MABEAM_HTTP_ADDRESS=0.0.0.0:7700 $(cat "$f") \
        "$MABEAMD" --check-config --data_dir="$T/data-$name" >"$T/$name.out" 2>&1 || rc=$?
    [ "$rc" = 0 ] || fail "$name: mabeamd --check-config exit $rc: $(cat "$T/$name.out")"
    grep -q "configuration OK" "$T/$name.out" || fail "$name: $(cat "$T/$name.out")"
done
grep -q "^EXPOSE 7700 7701 7702" "$ROOT/Dockerfile" || fail "Dockerfile EXPOSE"
grep -q "MABEAM_HTTP_ADDRESS=0.0.0.0:7700" "$ROOT/Dockerfile" || fail "Dockerfile HTTP address"
pass "docker-compose.yml: every service's configuration accepted, addresses consistent"
