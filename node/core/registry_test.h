/* Test hook of the registry (not for production code): lets a unit test
 * run code inside a lock-free lookup, between the read of the shard's
 * table pointer and the read of its slots, so that the seqlock's retry
 * path (a writer replaced the table meanwhile) is exercised
 * deterministically. */
#ifndef NC_REGISTRY_TEST_H
#define NC_REGISTRY_TEST_H

#include "node/core/registry.h"

/* Install `hook(arg)` (NULL to remove). Not thread-safe: set it while no
 * other thread uses the registry. The hook may call the registry. */
void nc_registry_set_test_hook_(nc_registry *reg, void (*hook)(void *arg), void *arg);

#endif /* NC_REGISTRY_TEST_H */
