/* JSON renderings (cJSON) of the agent management API's results, for the
 * HTTP API and the CLI: agent info, agent lists, kind lists. Field names
 * are documented in docs/agents.md ("Management API"). */
#ifndef MABEAM_AGENT_JSON_H
#define MABEAM_AGENT_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include <mabeam/agent_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Each returns a new cJSON tree the caller owns (cJSON_Delete), or NULL
 * when out of memory. Inputs are borrowed. Agent ids are rendered as
 * 16-digit hex strings (JSON numbers cannot hold 64 bits exactly). */
cJSON *mb_agent_info_json(const mb_agent_info *info);
/* {"total": total, "agents": [info...]} for `n` entries. */
cJSON *mb_agent_list_json(const mb_agent_info *infos, size_t n, size_t total);
/* {"kinds": [{"name","version","path","agents"}...]} */
cJSON *mb_kind_list_json(const mb_kind_info *kinds, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_AGENT_JSON_H */
