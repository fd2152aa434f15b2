/* Fuzz target: the history-line parser, then (for small histories) the
 * checker and the further checks on whatever parsed; also the checkpoint and
 * event-log decoders on the same bytes. Nothing may crash or leak. */
#include "lincheck.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[256];
    lc_history h;
    lc_history_init(&h);
    if (lc_parse_history(text, size, &h, err, sizeof err) == 0 && h.len <= 16) {
        lc_limits lim = { .budget_ms = 20, .max_memo_bytes = (size_t)16 << 20 };
        lc_var_result *res = NULL;
        size_t n = 0;
        if (lc_check(&h, &lim, &res, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                lc_var_result_close(&res[i]);
            free(res);
        }
        size_t *lost = NULL, nlost = 0;
        if (lc_check_lost_writes(&h, &lost, &nlost) == 0)
            free(lost);
    }
    lc_history_close(&h);
    (void)lc_check_checkpoints(text, size, err, sizeof err);
    const char *texts[2] = { text, text };
    size_t lens[2] = { size, size / 2 };
    size_t gaps = 0;
    (void)lc_check_event_logs(texts, lens, 2, err, sizeof err, &gaps);
    return 0;
}
