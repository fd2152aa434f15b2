/* What an agent that called mb_propose() hears back from its node. The
 * messages arrive as ordinary messages (MB_MSG_USER) from MB_AGENT_NONE
 * with one of these tags; the bytes are a JSON object (docs/proposals.md,
 * "Agents' proposals"):
 *   PROPOSAL_OPENED  {"proposal":N,"id":"N","variable":..}
 *   PROPOSAL_REFUSED {"proposal":N,"variable":..,"code":"MB_EPERM","error":..}
 *                    (never opened: unknown or non-consensus variable, bad
 *                    value, no live voter, another proposal open on it, no
 *                    quorum)
 *   PROPOSAL_DECIDED {"proposal":N,"id":"N","variable":..,"outcome":..,
 *                    "yes":..,"no":..,"voters":..}
 *                    (outcome "accepted", "rejected", "expired" or
 *                    "cancelled"; an accepted value is set in the same
 *                    commit)
 * N is the number mb_propose() returned (a JSON number above 2^52, which
 * cJSON may print with an exponent: "id" carries it exactly, as text). */
#ifndef MABEAM_PROPOSAL_H
#define MABEAM_PROPOSAL_H

#define MB_TAG_PROPOSAL_OPENED  0x4d500001u
#define MB_TAG_PROPOSAL_REFUSED 0x4d500002u
#define MB_TAG_PROPOSAL_DECIDED 0x4d500003u

#endif /* MABEAM_PROPOSAL_H */
