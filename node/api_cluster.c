/* node/api_cluster.c: cluster membership over HTTP — GET /v1/cluster (every
 * node's role, term, commit and applied index, failure-detector view) and
 * POST /v1/cluster/leave (this node leaves gracefully and stops). Joining
 * needs no route: a node started with `seeds` joins by itself. */
#include "node/node.h"
#include "node/replication.h"

static void cluster_get(node *n, api_call *c)
{
    repl_cluster_status(n->repl, c);
}

static void cluster_leave(node *n, api_call *c)
{
    repl_leave(n->repl, c);
}

static const api_route routes[] = {
    { "GET", "/v1/cluster", cluster_get, 0, "cluster" },
    { "POST", "/v1/cluster/leave", cluster_leave, 0, "cluster_leave" },
};

void api_cluster_register(api_router *r)
{
    api_router_add(r, routes, sizeof(routes) / sizeof(routes[0]));
}
