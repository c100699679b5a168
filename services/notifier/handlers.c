/* handlers: the notifier's Kafka records: a day's bulletin.requested (check the feed, send
 * or retry, give up at the deadline) and stock.replenished (back-in-stock alerts). */
#include "notifier.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "sku.h"
#include "util.h"

/* Checks source for day. Returns FEED_OK with *f and *prev (the figures the changes are
 * counted from: the feed's own item for the day before, else the last stored day; with
 * *has_prev 0 when neither), or the reason with why. */
static feed_reason_t check(struct notifier *n, const feed_source_t *source, const char *day,
                           const struct bulletin_view *v, feed_figures_t *f,
                           feed_figures_t *prev, int *has_prev, char *why, size_t why_size)
{
    feed_reason_t r = feed_fetch(n->curl, source, (long)n->cfg.fetch_timeout_ms, day,
                                 v->has_last ? &v->last : NULL, f, prev, has_prev, why,
                                 why_size);

    if (r == FEED_OK && !*has_prev && v->has_last) {
        *prev = v->last;
        *has_prev = 1;
    }
    return r;
}

/* The day cannot be sent: every active subscriber gets the unavailable notice. */
static kafka_verdict_t give_up(struct notifier *n, PGconn *conn, const char *day,
                               const char *reason, kafka_outcome_t *out)
{
    char body[NOTIFIER_BODY_MAX + 1];
    long long created = 0;

    if (bulletin_unavailable_text(&n->cfg.texts, day, reason, body, sizeof(body)) != 0) {
        snprintf(out->error, sizeof(out->error), "unavailable text does not fit");
        return KAFKA_RETRY;
    }
    switch (store_bulletin_unavailable(conn, day, reason, body, &created, out->error,
                                       sizeof(out->error))) {
    case STORE_OK:
        log_warn("bulletin_unavailable date=%s reason=%s messages=%lld", day,
                 reason[0] != '\0' ? reason : "unknown", created);
        sender_wake(n->sender);
        return KAFKA_DONE;
    case STORE_NOT_FOUND:
        log_info("bulletin_already_final date=%s", day);
        return KAFKA_DONE;
    default:
        return KAFKA_RETRY;
    }
}

static kafka_verdict_t bulletin(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out)
{
    struct notifier *n = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    event_bulletin_requested_t ev;
    const char *day = ev.date;
    long long deadline_ms;
    struct bulletin_view v;
    struct bulletin_failure fails[2];
    char why[2][512], body[NOTIFIER_BODY_MAX + 1];
    const feed_source_t *sources = n->cfg.sources;
    feed_figures_t f, prev;
    int has_prev = 0;
    feed_reason_t reason = FEED_OK;
    PGconn *conn = NULL;
    size_t nfails = 0, i;
    long long created = 0;
    int64_t now, left;

    if (event_bulletin_requested_parse(rec->msg, &meta, &ev, out->error,
                                       sizeof(out->error)) != 0) {
        snprintf(out->reason, sizeof(out->reason), "invalid_record");
        goto done;
    }
    deadline_ms = ev.deadline_ms;
    if (!feed_date_valid(day)) {
        snprintf(out->reason, sizeof(out->reason), "invalid_record");
        snprintf(out->error, sizeof(out->error),
                 "fields 'date' (YYYY-MM-DD) and 'deadline_ms' (> 0) are required");
        goto done;
    }
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, out->error, sizeof(out->error));
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_bulletin_view(conn, day, &v, out->error, sizeof(out->error))) {
    case STORE_OK:
        break;
    case STORE_NOT_FOUND:
        snprintf(out->reason, sizeof(out->reason), "unknown_bulletin");
        snprintf(out->error, sizeof(out->error), "no bulletin for %s in the database", day);
        goto done;
    default:
        verdict = KAFKA_RETRY;
        goto done;
    }
    if (strcmp(v.state, "sent") == 0 || strcmp(v.state, "unavailable") == 0) {
        log_info("bulletin_already_final date=%s state=%s", day, v.state);
        verdict = KAFKA_DONE;
        goto done;
    }
    if (rec->expired != NULL) {
        /* The retry service gave up (deadline or attempts): the last check's reason. */
        verdict = give_up(n, conn, day, v.last_reason[0] != '\0' ? v.last_reason
                                                                  : rec->last_reason, out);
        goto done;
    }

    /* No connection is held while the feed answers: that may take the fetch timeout. */
    db_release(n->db, conn);
    conn = NULL;
    for (i = 0; i < 2 && sources[i].url != NULL; i++) {
        reason = check(n, &sources[i], day, &v, &f, &prev, &has_prev, why[i], sizeof(why[i]));
        if (reason == FEED_OK)
            break;
        fails[nfails].source = sources[i].url;
        fails[nfails].reason = feed_reason_code(reason);
        fails[nfails].error = why[i];
        nfails++;
        log_warn("bulletin_check_failed date=%s attempt=%d source=%s reason=%s error=%s",
                 day, v.attempts + 1, sources[i].url, feed_reason_code(reason), LOG_Q(why[i]));
    }
    if (reason == FEED_OK &&
        bulletin_text(&n->cfg.texts, &f, has_prev ? &prev : NULL, body, sizeof(body)) != 0) {
        snprintf(out->error, sizeof(out->error), "bulletin text does not fit");
        verdict = KAFKA_RETRY;
        goto done;
    }
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, out->error, sizeof(out->error));
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_bulletin_attempt(conn, day, v.attempts + 1, fails, nfails,
                                   reason == FEED_OK ? &f : NULL,
                                   reason == FEED_OK ? sources[i].url : NULL, body, &created,
                                   out->error, sizeof(out->error))) {
    case STORE_OK:
        break;
    case STORE_NOT_FOUND:
        log_info("bulletin_already_final date=%s", day);
        verdict = KAFKA_DONE;
        goto done;
    default:
        verdict = KAFKA_RETRY;
        goto done;
    }
    if (reason == FEED_OK) {
        log_info("bulletin_sending date=%s attempt=%d source=%s messages=%lld", day,
                 v.attempts + 1, sources[i].url, created);
        sender_wake(n->sender);
        verdict = KAFKA_DONE;
        goto done;
    }
    /* The first source's reason travels with the retry (the fallback is the spare). */
    now = util_now_ms();
    if (now >= deadline_ms) {
        verdict = give_up(n, conn, day, fails[0].reason, out);
        goto done;
    }
    snprintf(out->reason, sizeof(out->reason), "%s", fails[0].reason);
    snprintf(out->error, sizeof(out->error), "%s", fails[0].error);
    out->delay_ms = n->cfg.retry_interval_ms;
    out->deadline_ms = deadline_ms;
    /* Enough attempts for the deadline: the deadline, not a count, ends the retries. */
    left = (deadline_ms - now) / n->cfg.retry_interval_ms + 2;
    out->max_attempts = left > INT_MAX / 2 ? INT_MAX / 2 : (int)(rec->attempt + left);
    verdict = KAFKA_RETRY_LATER;
done:
    db_release(n->db, conn);
    return verdict;
}

static kafka_verdict_t replenished(const kafka_record_t *rec, void *ctx,
                                   kafka_outcome_t *out)
{
    struct notifier *n = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    event_stock_replenished_t ev;
    const char *sku = ev.sku;
    char body[NOTIFIER_BODY_MAX + 1];
    PGconn *conn = NULL;
    long long created = 0;

    if (event_stock_replenished_parse(rec->msg, &meta, &ev, out->error,
                                      sizeof(out->error)) != 0) {
        snprintf(out->reason, sizeof(out->reason), "invalid_record");
        goto done;
    }
    if (bulletin_restock_text(&n->cfg.texts, sku, body, sizeof(body)) != 0) {
        snprintf(out->reason, sizeof(out->reason), "invalid_record");
        snprintf(out->error, sizeof(out->error), "field 'sku' must be " SKU_RULE);
        goto done;
    }
    if (rec->expired != NULL) {
        /* Only database trouble is retried here, and that in place: nothing to react to. */
        log_error("restock_alert_given_up event=%s sku=%s reason=%s", meta.id, sku,
                  rec->expired);
        verdict = KAFKA_DONE;
        goto done;
    }
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, out->error, sizeof(out->error));
    if (conn == NULL || store_restock(conn, meta.id, sku, body, &created, out->error,
                                      sizeof(out->error)) != STORE_OK) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    log_info("restock_alerts event=%s sku=%s messages=%lld", meta.id, sku, created);
    if (created > 0)
        sender_wake(n->sender);
    verdict = KAFKA_DONE;
done:
    db_release(n->db, conn);
    return verdict;
}

const router_route_t handlers_routes[] = {
    { EVENT_BULLETIN_REQUESTED, bulletin },
    { EVENT_STOCK_REPLENISHED, replenished },
};
const size_t handlers_nroutes = sizeof(handlers_routes) / sizeof(handlers_routes[0]);
