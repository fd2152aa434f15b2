/* Coordination messages an agent receives from its node (leases, barriers,
 * elections on the replicated state; docs/coordination.md). They arrive as
 * ordinary messages (MB_MSG_USER) from MB_AGENT_NONE with one of these
 * tags; the bytes are a JSON object:
 *   LEASE_GRANTED    {"name":..,"token":..,"expires_ms":..}
 *   LEASE_LOST       {"name":..,"token":..}
 *   BARRIER_PASSED,
 *   BARRIER_TIMED_OUT {"name":..,"round":..,"arrived":..,"parties":..}
 *   LEADER_GAINED,
 *   LEADER_LOST      {"group":..,"term":..}
 * Only agents placed in the cluster (registered by their cluster id in the
 * registry namespace "cluster") receive them. */
#ifndef MABEAM_COORD_H
#define MABEAM_COORD_H

#define MB_TAG_COORD_LEASE_GRANTED     0x4d430001u
#define MB_TAG_COORD_LEASE_LOST        0x4d430002u
#define MB_TAG_COORD_BARRIER_PASSED    0x4d430003u
#define MB_TAG_COORD_BARRIER_TIMED_OUT 0x4d430004u
#define MB_TAG_COORD_LEADER_GAINED     0x4d430005u
#define MB_TAG_COORD_LEADER_LOST       0x4d430006u

#endif /* MABEAM_COORD_H */
