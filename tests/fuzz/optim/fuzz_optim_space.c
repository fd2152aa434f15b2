/* Fuzz target: the JSON decoders of search spaces and optimiser configs
 * (outside input from the HTTP API). Anything decoded must be usable: a
 * decoded space re-encodes, and an optimiser built from it suggests valid
 * configurations. */
#include <mabeam/optim.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mb_optim_space *sp = NULL;
    mb_optim_config cfg;
    mb_error err;
    if (mb_optim_config_from_json((const char *)data, size, &cfg, &err) == MB_OK &&
        cfg.max_trials > 1000)
        cfg.max_trials = 1000;
    if (mb_optim_space_from_json((const char *)data, size, &sp, &err) != MB_OK)
        return 0;
    char *json = NULL;
    if (mb_optim_space_to_json(sp, &json, &err) == MB_OK)
        free(json);
    mb_optim_config_default(&cfg, MB_OPTIM_TPE);
    cfg.max_trials = 16;
    cfg.tpe.n_startup_trials = 4;
    mb_optim *o = NULL;
    if (mb_optim_new(sp, &cfg, &o, &err) == MB_OK) {
        double x[MB_OPTIM_MAX_DIMS];
        uint64_t id;
        while (mb_optim_suggest(o, &id, x, NULL) == MB_OK) {
            if (mb_optim_space_check(sp, x, NULL) != MB_OK)
                abort(); /* a bug: suggestions must always be valid */
            mb_optim_complete(o, id, (double)(id % 5), NULL);
        }
        mb_optim_free(o);
    }
    mb_optim_space_free(sp);
    return 0;
}
