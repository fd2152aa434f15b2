/* node/api_modules.c: the list of API modules. A module (node/api_*.c)
 * adds its routes in its own register function; adding a module means
 * adding one line here. Earlier tables win when patterns overlap, so
 * literal routes ("/v1/config/watch") go before patterns ("/v1/config/{key}"). */
#include "node/api.h"

void api_node_register(api_router *r);
void api_config_register(api_router *r);
void api_events_register(api_router *r);
void api_agents_register(api_router *r);
void api_vars_register(api_router *r);
void api_cluster_register(api_router *r);
void api_proposals_register(api_router *r); /* proposals piece */
void api_studies_register(api_router *r);
void api_coord_register(api_router *r); /* piece: agents/coord */

void api_register_all(api_router *r)
{
    api_node_register(r);
    api_config_register(r);
    api_events_register(r);
    api_agents_register(r);
    api_vars_register(r);
    api_cluster_register(r);
    api_proposals_register(r);
    api_studies_register(r);
    api_coord_register(r);
}
