/* bulletin: the texts of the notifier's messages, and the start of a day's bulletin. */
#include "notifier.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Formats one message into out; -1 when it does not fit out or NOTIFIER_SMS_MAX. */
static int text(char *out, size_t out_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int text(char *out, size_t out_size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, out_size, fmt, ap);
    va_end(ap);
    /* Plain ASCII throughout (dates, digits, SKUs, fixed words): bytes are characters. */
    if (n < 0 || (size_t)n >= out_size || n > NOTIFIER_SMS_MAX) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

int bulletin_text(const feed_figures_t *f, char *out, size_t out_size)
{
    return text(out, out_size, "dozen %s: confirmed %lld, recovered %lld, in treatment %lld, "
                "deaths %lld", f->date, f->confirmed, f->recovered, f->in_treatment, f->deaths);
}

int bulletin_unavailable_text(const char *day, const char *reason, char *out,
                              size_t out_size)
{
    return text(out, out_size, "dozen %s: today's bulletin is unavailable: %s.", day,
                feed_reason_words(reason));
}

int bulletin_restock_text(const char *sku, char *out, size_t out_size)
{
    return text(out, out_size, "dozen: %s is back in stock.", sku);
}

store_result_t bulletin_start(struct notifier *n, PGconn *conn, int64_t run_ms,
                              const char *trigger, int *created, json_t **out,
                              char *errstr, size_t errstr_size)
{
    char day[11], why[256];
    int64_t deadline_ms;

    *created = 0;
    if (out != NULL)
        *out = NULL;
    if (cron_local_date(n->cfg.zone, run_ms, day) != 0) {
        util_errf(errstr, errstr_size, "no local date for %lld in %s", (long long)run_ms,
                  cron_zone_name(n->cfg.zone));
        return STORE_FAILED;
    }
    /* A run after a clock deadline (a manual run at noon with BULLETIN_DEADLINE=11:00)
     * checks the feed once: no retries, and the notice at once if the check fails. */
    if (cron_deadline_at(&n->cfg.deadline, n->cfg.zone, run_ms, &deadline_ms,
                         why, sizeof(why)) != 0)
        deadline_ms = run_ms;
    return store_bulletin_create(conn, day, trigger, run_ms, deadline_ms, created, out,
                                 errstr, errstr_size);
}
