/* Fuzz target: restoring an optimiser from a saved document (read back
 * from replicated state or disk). Whatever restores must save again and
 * keep suggesting valid configurations. */
#include <mabeam/optim.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mb_optim *o = NULL;
    mb_error err;
    if (mb_optim_restore((const char *)data, size, &o, &err) != MB_OK)
        return 0;
    char *json = NULL;
    if (mb_optim_save(o, &json, NULL, &err) == MB_OK)
        free(json);
    double x[MB_OPTIM_MAX_DIMS];
    uint64_t id;
    for (int i = 0; i < 8 && mb_optim_suggest(o, &id, x, NULL) == MB_OK; i++) {
        if (mb_optim_space_check(mb_optim_get_space(o), x, NULL) != MB_OK)
            abort();
        mb_optim_complete(o, id, (double)i, NULL);
    }
    mb_optim_free(o);
    return 0;
}
