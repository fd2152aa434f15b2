# shellcheck shell=bash
# tests/bench/cluster/lib.sh: sourced by the A/B and probe scripts beside it
# (ab_writes.sh, sustained.sh, flush_probe.sh), which all start the same
# fresh cluster. Needs HERE (the repository root).
#
# fresh_cluster DIR PORT MABEAMD: stop and remove any cluster in DIR, start a
# 3-node cluster of MABEAMD there on loopback (scripts/cluster.sh: node i
# serves HTTP on PORT+10*(i-1)), define the float variable `bench` the wrk
# scripts write, and set A (node 1's HTTP address) and LA (the leader's).
# Exports MABEAM_CLUSTER_DIR, MABEAM_CLUSTER_PORT and MABEAMD, so that the
# caller's EXIT trap can run cluster_down.
cluster_down() { "$HERE/scripts/cluster.sh" down >/dev/null 2>&1 || true; }

fresh_cluster() {
    export MABEAM_CLUSTER_DIR=$1 MABEAM_CLUSTER_PORT=$2 MABEAMD=$3
    cluster_down
    rm -rf "$MABEAM_CLUSTER_DIR"
    "$HERE/scripts/cluster.sh" up 3 >&2
    A=127.0.0.1:$MABEAM_CLUSTER_PORT
    curl -fsS -XPOST "http://$A/v1/vars" \
        -d '{"name":"bench","type":"float","min":0,"max":1,"value":0}' >/dev/null
    local leader
    leader=$(curl -fsS "http://$A/v1/cluster" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
    # shellcheck disable=SC2034 # read by the caller
    LA=127.0.0.1:$((MABEAM_CLUSTER_PORT + 10 * (leader - 1)))
}
