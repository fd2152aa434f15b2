/* Fuzz target: alert rule text (the alert_rules config key). Checks it,
 * then installs it in an alert engine over a small metrics registry and
 * evaluates one tick, so that accepted rules are also exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/core/telemetry.h"

static void alert_cb(void *arg, const nc_alert_event *ev)
{
    (void)arg;
    (void)ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    mb_error err;
    if (nc_alerts_parse_check(s, &err) == MB_OK) {
        nc_metrics *m;
        nc_alerts *a;
        if (nc_metrics_new(&m, NULL) == MB_OK) {
            nc_gauge *g;
            nc_hist *h;
            nc_label l[] = { { "kind", "trainer" } };
            nc_metrics_gauge(m, "m", "g", l, 1, &g, NULL);
            nc_metrics_hist(m, "h", "h", NULL, 0, NULL, &h, NULL);
            nc_gauge_set(g, 5);
            nc_hist_record(h, 100);
            if (nc_alerts_new(&a, m, alert_cb, NULL, NULL) == MB_OK) {
                if (nc_alerts_set_rules(a, s, 0, NULL) == MB_OK) {
                    nc_alerts_tick(a, 0);
                    nc_alerts_tick(a, 1000000);
                    free(nc_alerts_active_json(a));
                }
                nc_alerts_set_rules(a, "", 1000001, NULL);
                nc_alerts_free(a);
            }
            nc_metrics_free(m);
        }
    }
    free(s);
    return 0;
}
