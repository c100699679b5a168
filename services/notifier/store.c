/* store: the notifier's SQL: subscribers and bulletins (the sender's deliveries are in
 * store_delivery.c; the statements of both are in store_stmts here). Every statement is
 * prepared with $n parameters; JSON answers are built by PostgreSQL (json_build_object). */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "log.h"
#include "phone.h"
#include "trace.h"
#include "util.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define SUBSCRIBER_JSON                                                                  \
    "json_build_object('id', s.id, 'phone', s.phone, 'name', s.name, 'skus', "           \
    "COALESCE((SELECT json_agg(k.sku ORDER BY k.sku) FROM subscriber_skus k "            \
    "          WHERE k.subscriber_id = s.id), '[]'::json), "                            \
    "'created_at', " TS("s.created_at") ")::text"

#define BULLETIN_JSON                                                                    \
    "json_build_object('date', to_char(b.day, 'YYYY-MM-DD'), 'state', b.state, "         \
    "'trigger', b.trigger, 'attempts', b.attempts, "                                     \
    "'retries', GREATEST(b.attempts - 1, 0), 'reason', b.last_reason, "                  \
    "'error', b.last_error, 'source', b.source, 'figures', CASE WHEN b.confirmed IS NULL " \
    "THEN NULL ELSE json_build_object('confirmed', b.confirmed, 'recovered', b.recovered, " \
    "'in_treatment', b.in_treatment, 'deaths', b.deaths) END, "                         \
    "'scheduled_at', " TS("b.scheduled_at") ", 'deadline_at', " TS("b.deadline_at") ", " \
    "'finished_at', " TS("b.finished_at") ", "                                           \
    "'messages', (SELECT json_build_object('total', count(*), "                          \
    "  'sent', count(*) FILTER (WHERE d.status = 'sent'), "                              \
    "  'pending', count(*) FILTER (WHERE d.status IN ('pending', 'sending')), "          \
    "  'failed', count(*) FILTER (WHERE d.status = 'failed'), "                          \
    "  'cancelled', count(*) FILTER (WHERE d.status = 'cancelled')) "                    \
    "  FROM deliveries d WHERE d.message_key = 'day:' || to_char(b.day, 'YYYY-MM-DD')), " \
    "'failures', COALESCE((SELECT json_agg(json_build_object('attempt', a.attempt, "     \
    "  'at', " TS("a.at") ", 'source', a.source, 'reason', a.reason, 'error', a.error) " \
    "  ORDER BY a.attempt, a.at) FROM bulletin_attempts a WHERE a.day = b.day), "        \
    "  '[]'::json))::text"

/* Deliveries for every active subscriber ($1 key, $2 kind, $3 body, $4 traceparent). */
#define DELIVERIES_ALL                                                                   \
    "INSERT INTO deliveries (subscriber_id, message_key, kind, body, traceparent) "      \
    "SELECT id, $1, $2, $3, $4 FROM subscribers WHERE opted_out_at IS NULL FOR SHARE "   \
    "ON CONFLICT (subscriber_id, message_key) DO NOTHING"

const db_stmt_t store_stmts[] = {
    { "sub_insert",
      "INSERT INTO subscribers (id, phone, name) VALUES ($1::uuid, $2, $3) "
      "ON CONFLICT (phone) WHERE opted_out_at IS NULL DO NOTHING RETURNING id", 3 },
    { "sub_active_id",
      "SELECT id FROM subscribers WHERE phone = $1 AND opted_out_at IS NULL", 1 },
    { "sub_skus_add",
      "INSERT INTO subscriber_skus (subscriber_id, sku) "
      "SELECT $1::uuid, v FROM jsonb_array_elements_text($2::jsonb) v "
      "ON CONFLICT DO NOTHING", 2 },
    { "sub_get",
      "SELECT " SUBSCRIBER_JSON " FROM subscribers s "
      "WHERE s.id = $1::uuid AND s.opted_out_at IS NULL", 1 },
    { "sub_list",
      "SELECT " SUBSCRIBER_JSON " FROM subscribers s WHERE s.opted_out_at IS NULL "
      "ORDER BY s.created_at, s.id LIMIT $1::bigint OFFSET $2::bigint", 2 },
    { "sub_count", "SELECT count(*) FROM subscribers WHERE opted_out_at IS NULL", 0 },
    { "sub_lock",
      "SELECT 1 FROM subscribers WHERE id = $1::uuid AND opted_out_at IS NULL "
      "FOR UPDATE", 1 },
    { "sub_opt_out",
      "UPDATE subscribers SET opted_out_at = now() WHERE id = $1::uuid "
      "AND opted_out_at IS NULL RETURNING " TS("opted_out_at"), 1 },
    /* The UPDATE of sub_opt_out waits for a send in flight (the sender holds the
     * subscriber FOR SHARE from its check to the commit of the outcome) and for a day's or
     * a restock's deliveries being created (FOR SHARE too); then this cancels what is left,
     * those included. */
    { "sub_cancel",
      "UPDATE deliveries SET status = 'cancelled' WHERE subscriber_id = $1::uuid "
      "AND status IN ('pending', 'sending')", 1 },
    { "sub_sku_put",
      "INSERT INTO subscriber_skus (subscriber_id, sku) VALUES ($1::uuid, $2) "
      "ON CONFLICT DO NOTHING", 2 },
    { "sub_sku_delete",
      "DELETE FROM subscriber_skus WHERE subscriber_id = $1::uuid AND sku = $2", 2 },
    { "sub_skus",
      "SELECT json_build_object('id', $1::uuid, 'skus', COALESCE((SELECT json_agg(sku "
      "ORDER BY sku) FROM subscriber_skus WHERE subscriber_id = $1::uuid), '[]'::json))::text",
      1 },

    { "b_insert",
      "INSERT INTO bulletins (day, trigger, scheduled_at, deadline_at) "
      "VALUES ($1::date, $2, to_timestamp($3::bigint / 1000.0), "
      "to_timestamp($4::bigint / 1000.0)) ON CONFLICT (day) DO NOTHING RETURNING day", 4 },
    { "b_get", "SELECT " BULLETIN_JSON " FROM bulletins b WHERE b.day = $1::date", 1 },
    { "b_view",
      "SELECT state, attempts, COALESCE(last_reason, '') FROM bulletins "
      "WHERE day = $1::date", 1 },
    { "b_last",
      "SELECT to_char(day, 'YYYY-MM-DD'), confirmed, recovered, in_treatment, deaths "
      "FROM bulletins WHERE day < $1::date AND confirmed IS NOT NULL "
      "ORDER BY day DESC LIMIT 1", 1 },
    { "b_lock", "SELECT state FROM bulletins WHERE day = $1::date FOR UPDATE", 1 },
    { "b_failure",
      "INSERT INTO bulletin_attempts (day, attempt, source, reason, error) "
      "VALUES ($1::date, $2::int, $3, $4, $5) ON CONFLICT DO NOTHING", 5 },
    { "b_retrying",
      "UPDATE bulletins SET state = 'retrying', attempts = $2::int, last_reason = $3, "
      "last_error = $4, updated_at = now() WHERE day = $1::date", 4 },
    { "b_sent",
      "UPDATE bulletins SET state = 'sent', attempts = $2::int, source = $3, "
      "confirmed = $4::bigint, recovered = $5::bigint, in_treatment = $6::bigint, "
      "deaths = $7::bigint, finished_at = now(), updated_at = now() WHERE day = $1::date", 7 },
    { "b_unavailable",
      "UPDATE bulletins SET state = 'unavailable', last_reason = COALESCE($2, last_reason), "
      "finished_at = now(), updated_at = now() WHERE day = $1::date", 2 },
    { "d_all", DELIVERIES_ALL, 4 },
    { "d_sku",
      "INSERT INTO deliveries (subscriber_id, message_key, kind, body, traceparent) "
      "SELECT s.id, $1, 'restock', $2, $4 FROM subscribers s "
      "JOIN subscriber_skus k ON k.subscriber_id = s.id "
      "WHERE k.sku = $3 AND s.opted_out_at IS NULL FOR SHARE OF s "
      "ON CONFLICT (subscriber_id, message_key) DO NOTHING", 4 },

    /* A claim pushes next_attempt_at a lease ahead: a sender that dies leaves the row
     * 'sending' and due again after the lease, then uncertain (ask the gateway first). */
    { "d_claim",
      "UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, "
      "claimed_at = now(), uncertain = d.uncertain OR d.status = 'sending', "
      "first_claimed_at = COALESCE(d.first_claimed_at, now()), "
      "next_attempt_at = now() + make_interval(secs => $2::float8 / 1000) "
      "FROM subscribers s WHERE s.id = d.subscriber_id AND d.id IN ("
      " SELECT d2.id FROM deliveries d2 WHERE d2.status IN ('pending', 'sending') "
      " AND d2.next_attempt_at <= now() ORDER BY d2.next_attempt_at, d2.id "
      " LIMIT $1::int FOR UPDATE SKIP LOCKED) "
      "RETURNING d.id, s.phone, d.body, "
      "(extract(epoch FROM d.first_claimed_at) * 1000)::bigint, d.attempts, d.uncertain, "
      "d.callback_token, COALESCE(d.traceparent, '')", 2 },
    /* In the send's transaction: the delivery is still this sender's and its subscriber
     * still active; the subscriber is held FOR SHARE until the outcome is committed, so an
     * opt-out (an UPDATE of that row) waits for it, and one that came first is seen. */
    /* The subscriber first, then the delivery: the order an opt-out takes them in
     * (sub_opt_out, then sub_cancel), so the two cannot deadlock. */
    { "d_lock_sub",
      "SELECT 1 FROM subscribers WHERE id = (SELECT subscriber_id FROM deliveries "
      "WHERE id = $1::bigint) AND opted_out_at IS NULL FOR SHARE", 1 },
    { "d_lock",
      "SELECT COALESCE(gateway_sid, '') FROM deliveries "
      "WHERE id = $1::bigint AND status = 'sending' FOR NO KEY UPDATE", 1 },
    /* 429: certainly not taken; not an attempt either, so a storm cannot use them up. */
    { "d_throttled",
      "UPDATE deliveries SET status = 'pending', attempts = GREATEST(attempts - 1, 0), "
      "last_error = $3, next_attempt_at = now() + make_interval(secs => $2::float8 / 1000) "
      "WHERE id = $1::bigint AND status = 'sending'", 3 },
    /* The next $3 slots of sender $1 at $2 ms a message, none before its pause ends: how
     * many ms to wait for the first of them (the others follow $2 ms apart), rounded up so
     * that a sender woken then does not find the pause a fraction of a ms from its end. */
    { "d_slot",
      "INSERT INTO sms_senders AS t (sender, next_slot_at) "
      "VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8 * $3::int / 1000)) "
      "ON CONFLICT (sender) DO UPDATE SET next_slot_at = GREATEST(t.next_slot_at, "
      "clock_timestamp(), t.paused_until) + make_interval(secs => $2::float8 * $3::int / 1000) "
      "RETURNING GREATEST(0, ceil(extract(epoch FROM t.next_slot_at - clock_timestamp()) "
      "* 1000 - $2::float8 * $3::int))::bigint", 3 },
    /* Retry-After: sender $1 sends nothing for $2 ms, whatever slots are reserved. */
    { "d_pause",
      "INSERT INTO sms_senders AS t (sender, paused_until) "
      "VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8 / 1000)) "
      "ON CONFLICT (sender) DO UPDATE SET paused_until = GREATEST(t.paused_until, "
      "clock_timestamp() + make_interval(secs => $2::float8 / 1000))", 2 },
    /* The ms left of sender $1's pause (0: none). A plain read: no row lock. */
    { "d_paused",
      "SELECT CASE WHEN paused_until > clock_timestamp() THEN ceil(extract(epoch FROM "
      "paused_until - clock_timestamp()) * 1000)::bigint ELSE 0 END "
      "FROM sms_senders WHERE sender = $1", 1 },
    /* Of sids $1, those another delivery than $2 was recorded as: not this one's. */
    { "d_other_sids",
      "SELECT gateway_sid FROM deliveries WHERE gateway_sid = ANY($1::text[]) "
      "AND id <> $2::bigint", 2 },
    /* A status callback ($1 delivery, $2 token, $3 status, $4 sid): the provider has the
     * message, so a delivery still open or given up as uncertain is sent. A status never
     * moves back (callbacks may come out of order); a cancelled delivery stays cancelled
     * (its message went before the opt-out) but keeps what the provider said. */
    { "d_status",
      "UPDATE deliveries SET provider_status = CASE WHEN COALESCE(array_position("
      "  ARRAY['accepted','queued','sending','sent','delivered','undelivered','failed'], "
      "  provider_status), 0) <= array_position(ARRAY['accepted','queued','sending','sent',"
      "  'delivered','undelivered','failed'], $3) THEN $3 ELSE provider_status END, "
      "provider_status_at = now(), gateway_sid = COALESCE(gateway_sid, $4), "
      "status = CASE WHEN status IN ('pending', 'sending') OR (status = 'failed' AND "
      "  uncertain) THEN 'sent' ELSE status END, "
      "sent_at = CASE WHEN status IN ('pending', 'sending') OR (status = 'failed' AND "
      "  uncertain) THEN now() ELSE sent_at END, "
      "uncertain = CASE WHEN status = 'cancelled' THEN uncertain ELSE false END "
      "WHERE id = $1::bigint AND callback_token = $2::uuid "
      "RETURNING status", 4 },
    /* When the last open message of key $1 is expected out: sender $2 at $3 ms a message
     * sends every open message due no later than it first (one queue per number). */
    { "d_eta",
      "WITH mine AS (SELECT max(next_attempt_at) AS last FROM deliveries "
      "  WHERE message_key = $1 AND status IN ('pending', 'sending')), "
      "ahead AS (SELECT count(*) AS n FROM deliveries d, mine "
      "  WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= mine.last) "
      "SELECT CASE WHEN mine.last IS NULL THEN NULL ELSE " TS("GREATEST(mine.last, "
      "  GREATEST(clock_timestamp(), COALESCE((SELECT GREATEST(next_slot_at, paused_until) "
      "  FROM sms_senders WHERE sender = $2), clock_timestamp())) "
      "  + make_interval(secs => ahead.n * $3::float8 / 1000))") " END "
      "FROM mine, ahead", 3 },
    { "d_sent",
      "UPDATE deliveries SET status = 'sent', sent_at = now(), gateway_sid = NULLIF($2, ''), "
      "uncertain = false, last_error = NULL WHERE id = $1::bigint", 2 },
    { "d_retry",
      "UPDATE deliveries SET status = 'pending', uncertain = $3::boolean, last_error = $4, "
      "next_attempt_at = now() + make_interval(secs => $2::float8 / 1000) "
      "WHERE id = $1::bigint AND status = 'sending'", 4 },
    { "d_failed",
      "UPDATE deliveries SET status = 'failed', last_error = $2 "
      "WHERE id = $1::bigint AND status = 'sending'", 2 },
    { "d_renew",
      "UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $2::float8 / 1000) "
      "WHERE id = ANY($1::bigint[]) AND status = 'sending'", 2 },
    { "d_unclaim",
      "UPDATE deliveries SET status = 'pending', attempts = attempts - 1, "
      "next_attempt_at = now() WHERE id = ANY($1::bigint[]) AND status = 'sending'", 1 },
    INBOX_DB_STMT,
    OUTBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

/* Runs a statement whose result carries nothing we need; *rows (may be NULL) gets the
 * number of rows it touched. */
int store_run(PGconn *conn, const char *stmt, int n, const char *const *p, long long *rows,
              char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, stmt, n, p, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    if (rows != NULL)
        *rows = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/* Parses the JSON text PostgreSQL built. NULL with errstr if it is not JSON. */
static json_t *json_of(const char *text, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    if (j == NULL)
        util_errf(errstr, errstr_size, "database JSON: %s", jerr.text);
    return j;
}

/* Replaces a subscriber object's "phone" with its masked form. */
static void mask_phone(json_t *sub)
{
    char masked[PHONE_MASK_MAX];
    const char *phone = json_string_value(json_object_get(sub, "phone"));

    if (phone == NULL)
        return;
    phone_mask(phone, masked, sizeof(masked));
    json_object_set_new(sub, "phone", json_string(masked));
}

/* Runs a one-row statement whose single column is JSON text: STORE_OK with *out,
 * STORE_NOT_FOUND for no row. */
static store_result_t one_json(PGconn *conn, const char *stmt, int n, const char *const *p,
                               json_t **out, char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, stmt, n, p, NULL, errstr, errstr_size);
    store_result_t r = STORE_FAILED;

    *out = NULL;
    if (res == NULL)
        return STORE_FAILED;
    if (PQntuples(res) == 0) {
        r = STORE_NOT_FOUND;
    } else if ((*out = json_of(PQgetvalue(res, 0, 0), errstr, errstr_size)) != NULL) {
        r = STORE_OK;
    }
    PQclear(res);
    return r;
}

store_result_t store_subscriber_add(PGconn *conn, const char *phone, const char *name,
                                    json_t *skus, json_t **out, char *existing_id,
                                    char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    PGresult *res = NULL;
    char id[37], *skus_text = NULL;
    const char *p[3];

    *out = NULL;
    existing_id[0] = '\0';
    if (util_uuid_v4(id) != 0) {
        util_errf(errstr, errstr_size, "no randomness for an id");
        return STORE_FAILED;
    }
    skus_text = json_dumps(skus, JSON_COMPACT);
    if (skus_text == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return STORE_FAILED;
    }
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    p[0] = id;
    p[1] = phone;
    p[2] = name;
    if ((res = db_exec(conn, "sub_insert", 3, p, NULL, errstr, errstr_size)) == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        PQclear(res);
        res = db_exec(conn, "sub_active_id", 1, &phone, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
        if (PQntuples(res) == 1)
            snprintf(existing_id, 37, "%s", PQgetvalue(res, 0, 0));
        r = STORE_CONFLICT;
        goto done;
    }
    p[1] = skus_text;
    if (store_run(conn, "sub_skus_add", 2, p, NULL, errstr, errstr_size) != 0)
        goto done;
    if (one_json(conn, "sub_get", 1, p, out, errstr, errstr_size) != STORE_OK ||
        db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    mask_phone(*out);
    r = STORE_OK;
done:
    if (r != STORE_OK) {
        db_rollback(conn);
        json_decref(*out);
        *out = NULL;
    }
    PQclear(res);
    free(skus_text);
    return r;
}

json_t *store_subscriber_list(PGconn *conn, long long limit, long long offset,
                              char *errstr, size_t errstr_size)
{
    char lim[24], off[24];
    const char *p[2] = { lim, off };
    PGresult *res = NULL;
    json_t *subs = NULL, *sub, *answer = NULL;
    long long total = 0;
    int i;

    snprintf(lim, sizeof(lim), "%lld", limit);
    snprintf(off, sizeof(off), "%lld", offset);
    if ((res = db_exec(conn, "sub_count", 0, NULL, NULL, errstr, errstr_size)) == NULL)
        goto done;
    total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if ((res = db_exec(conn, "sub_list", 2, p, NULL, errstr, errstr_size)) == NULL)
        goto done;
    if ((subs = json_array()) == NULL)
        goto done;
    for (i = 0; i < PQntuples(res); i++) {
        if ((sub = json_of(PQgetvalue(res, i, 0), errstr, errstr_size)) == NULL)
            goto done;
        mask_phone(sub);
        json_array_append_new(subs, sub);
    }
    answer = json_pack("{s:O,s:I}", "subscribers", subs, "total", (json_int_t)total);
    if (answer == NULL)
        util_errf(errstr, errstr_size, "out of memory");
done:
    PQclear(res);
    json_decref(subs);
    return answer;
}

store_result_t store_subscriber_get(PGconn *conn, const char *id, json_t **out,
                                    char *errstr, size_t errstr_size)
{
    store_result_t r = one_json(conn, "sub_get", 1, &id, out, errstr, errstr_size);

    if (r == STORE_OK)
        mask_phone(*out);
    return r;
}

store_result_t store_subscriber_remove(PGconn *conn, const char *id, json_t **out,
                                       char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    PGresult *res = NULL;
    long long cancelled = 0;

    *out = NULL;
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if ((res = db_exec(conn, "sub_opt_out", 1, &id, NULL, errstr, errstr_size)) == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        r = STORE_NOT_FOUND;
        goto done;
    }
    if (store_run(conn, "sub_cancel", 1, &id, &cancelled, errstr, errstr_size) != 0)
        goto done;
    *out = json_pack("{s:s,s:s,s:I}", "id", id, "opted_out_at", PQgetvalue(res, 0, 0),
                     "cancelled_messages", (json_int_t)cancelled);
    if (*out == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    r = STORE_OK;
done:
    if (r != STORE_OK) {
        db_rollback(conn);
        json_decref(*out);
        *out = NULL;
    }
    PQclear(res);
    return r;
}

store_result_t store_subscriber_sku(PGconn *conn, const char *id, const char *sku, int add,
                                    json_t **out, char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    PGresult *res = NULL;
    const char *p[2] = { id, sku };
    long long rows = 0;

    *out = NULL;
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    /* Locked, so that an opt-out cannot pass in between. */
    if ((res = db_exec(conn, "sub_lock", 1, p, NULL, errstr, errstr_size)) == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        r = STORE_NOT_FOUND;
        goto done;
    }
    if (store_run(conn, add ? "sub_sku_put" : "sub_sku_delete", 2, p, &rows,
            errstr, errstr_size) != 0)
        goto done;
    if (!add && rows == 0) {
        r = STORE_NOT_FOUND;
        goto done;
    }
    if (one_json(conn, "sub_skus", 1, p, out, errstr, errstr_size) != STORE_OK ||
        db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    r = STORE_OK;
done:
    if (r != STORE_OK) {
        db_rollback(conn);
        json_decref(*out);
        *out = NULL;
    }
    PQclear(res);
    return r;
}

store_result_t store_bulletin_create(PGconn *conn, const char *day, const char *trigger,
                                     int64_t scheduled_ms, int64_t deadline_ms, int *created,
                                     json_t **out, char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    PGresult *res = NULL;
    char sched[24], dead[24], sched_at[32], dead_at[32];
    const char *p[4] = { day, trigger, sched, dead };
    event_bulletin_requested_t ev;
    event_out_t out_ev = { 0 };

    *created = 0;
    if (out != NULL)
        *out = NULL;
    snprintf(sched, sizeof(sched), "%lld", (long long)scheduled_ms);
    snprintf(dead, sizeof(dead), "%lld", (long long)deadline_ms);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if ((res = db_exec(conn, "b_insert", 4, p, NULL, errstr, errstr_size)) == NULL)
        goto done;
    if (PQntuples(res) == 1) {
        if (util_rfc3339(scheduled_ms, sched_at, sizeof(sched_at)) != 0 ||
            util_rfc3339(deadline_ms, dead_at, sizeof(dead_at)) != 0) {
            util_errf(errstr, errstr_size, "time out of range");
            goto done;
        }
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.date, sizeof(ev.date), "%s", day);
        snprintf(ev.scheduled_at, sizeof(ev.scheduled_at), "%s", sched_at);
        snprintf(ev.deadline_at, sizeof(ev.deadline_at), "%s", dead_at);
        ev.deadline_ms = deadline_ms;
        snprintf(ev.trigger, sizeof(ev.trigger), "%s", trigger);
        if (event_bulletin_requested_pack(&ev, &out_ev, errstr, errstr_size) != 0 ||
            outbox_add(conn, NOTIFIER_SERVICE, out_ev.spec->topic, out_ev.key,
                       out_ev.spec->type, NOTIFIER_SOURCE, out_ev.text, NULL, errstr,
                       errstr_size) != 0)
            goto done;
        *created = 1;
    }
    if (out != NULL && one_json(conn, "b_get", 1, p, out, errstr, errstr_size) != STORE_OK)
        goto done;
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    r = STORE_OK;
done:
    if (r != STORE_OK) {
        db_rollback(conn);
        *created = 0;
        if (out != NULL) {
            json_decref(*out);
            *out = NULL;
        }
    }
    PQclear(res);
    event_out_clear(&out_ev);
    return r;
}

store_result_t store_bulletin_get(PGconn *conn, const char *day, json_t **out,
                                  char *errstr, size_t errstr_size)
{
    return one_json(conn, "b_get", 1, &day, out, errstr, errstr_size);
}

long long store_column_ll(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

store_result_t store_bulletin_view(PGconn *conn, const char *day, struct bulletin_view *v,
                                   char *errstr, size_t errstr_size)
{
    PGresult *res;
    store_result_t r = STORE_FAILED;

    memset(v, 0, sizeof(*v));
    if ((res = db_exec(conn, "b_view", 1, &day, NULL, errstr, errstr_size)) == NULL)
        return STORE_FAILED;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    snprintf(v->state, sizeof(v->state), "%s", PQgetvalue(res, 0, 0));
    v->attempts = (int)store_column_ll(res, 0, 1);
    snprintf(v->last_reason, sizeof(v->last_reason), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if ((res = db_exec(conn, "b_last", 1, &day, NULL, errstr, errstr_size)) == NULL)
        return STORE_FAILED;
    if (PQntuples(res) == 1) {
        v->has_last = 1;
        snprintf(v->last.date, sizeof(v->last.date), "%s", PQgetvalue(res, 0, 0));
        v->last.confirmed = store_column_ll(res, 0, 1);
        v->last.recovered = store_column_ll(res, 0, 2);
        v->last.in_treatment = store_column_ll(res, 0, 3);
        v->last.deaths = store_column_ll(res, 0, 4);
    }
    r = STORE_OK;
    PQclear(res);
    return r;
}

/* In a transaction: locks the day's bulletin. STORE_OK when it is still open (scheduled or
 * retrying), STORE_NOT_FOUND when there is none or it is final. */
static store_result_t lock_open(PGconn *conn, const char *day, char *errstr,
                                size_t errstr_size)
{
    PGresult *res = db_exec(conn, "b_lock", 1, &day, NULL, errstr, errstr_size);
    store_result_t r;
    const char *state;

    if (res == NULL)
        return STORE_FAILED;
    state = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    r = strcmp(state, "scheduled") == 0 || strcmp(state, "retrying") == 0
        ? STORE_OK : STORE_NOT_FOUND;
    PQclear(res);
    return r;
}

/* In a transaction: the day's message (body, kind) for every active subscriber, in the
 * thread's trace (the bulletin run's record) when there is one. */
static int deliveries_for_day(PGconn *conn, const char *day, const char *kind,
                              const char *body, long long *created,
                              char *errstr, size_t errstr_size)
{
    char key[NOTIFIER_KEY_MAX];
    const char *p[4] = { key, kind, body, trace_current() };

    snprintf(key, sizeof(key), "day:%s", day);
    return store_run(conn, "d_all", 4, p, created, errstr, errstr_size);
}

/* Ends the caller's transaction: commits when r is STORE_OK (a failed commit makes it
 * STORE_FAILED), else rolls back; *created is 0 unless committed. Returns the result. */
static store_result_t end_tx(PGconn *conn, store_result_t r, long long *created,
                             char *errstr, size_t errstr_size)
{
    if (r == STORE_OK && db_commit(conn, errstr, errstr_size) != 0)
        r = STORE_FAILED;
    if (r != STORE_OK) {
        db_rollback(conn);
        *created = 0;
    }
    return r;
}

store_result_t store_bulletin_attempt(PGconn *conn, const char *day, int attempt,
                                      const struct bulletin_failure *fails, size_t n,
                                      const feed_figures_t *f, const char *source,
                                      const char *body, long long *created,
                                      char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    char att[16], c[24], rc[24], t[24], d[24];
    const char *p[7];
    size_t i;

    *created = 0;
    snprintf(att, sizeof(att), "%d", attempt);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if ((r = lock_open(conn, day, errstr, errstr_size)) != STORE_OK)
        goto done;
    r = STORE_FAILED;
    for (i = 0; i < n; i++) {
        p[0] = day;
        p[1] = att;
        p[2] = fails[i].source;
        p[3] = fails[i].reason;
        p[4] = fails[i].error;
        if (store_run(conn, "b_failure", 5, p, NULL, errstr, errstr_size) != 0)
            goto done;
    }
    p[0] = day;
    p[1] = att;
    if (f != NULL) {
        snprintf(c, sizeof(c), "%lld", f->confirmed);
        snprintf(rc, sizeof(rc), "%lld", f->recovered);
        snprintf(t, sizeof(t), "%lld", f->in_treatment);
        snprintf(d, sizeof(d), "%lld", f->deaths);
        p[2] = source;
        p[3] = c;
        p[4] = rc;
        p[5] = t;
        p[6] = d;
        if (store_run(conn, "b_sent", 7, p, NULL, errstr, errstr_size) != 0 ||
            deliveries_for_day(conn, day, "bulletin", body, created, errstr,
                               errstr_size) != 0)
            goto done;
    } else if (n > 0) {
        /* The first source's reason is the day's (the fallback is the spare). */
        p[2] = fails[0].reason;
        p[3] = fails[0].error;
        if (store_run(conn, "b_retrying", 4, p, NULL, errstr, errstr_size) != 0)
            goto done;
    }
    r = STORE_OK;
done:
    return end_tx(conn, r, created, errstr, errstr_size);
}

store_result_t store_bulletin_unavailable(PGconn *conn, const char *day, const char *reason,
                                          const char *body, long long *created,
                                          char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    const char *p[2] = { day, reason != NULL && reason[0] != '\0' ? reason : NULL };

    *created = 0;
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if ((r = lock_open(conn, day, errstr, errstr_size)) != STORE_OK)
        goto done;
    r = STORE_FAILED;
    if (store_run(conn, "b_unavailable", 2, p, NULL, errstr, errstr_size) != 0 ||
        deliveries_for_day(conn, day, "unavailable", body, created, errstr,
                           errstr_size) != 0)
        goto done;
    r = STORE_OK;
done:
    return end_tx(conn, r, created, errstr, errstr_size);
}

store_result_t store_restock(PGconn *conn, const char *ce_id, const char *sku,
                             const char *body, long long *created,
                             char *errstr, size_t errstr_size)
{
    store_result_t r = STORE_FAILED;
    char key[NOTIFIER_KEY_MAX];
    const char *p[4] = { key, body, sku, trace_current() }; /* the record's trace */
    int first;

    *created = 0;
    snprintf(key, sizeof(key), "restock:%s", ce_id);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if ((first = inbox_claim(conn, NOTIFIER_GROUP, ce_id, errstr, errstr_size)) < 0)
        goto done;
    if (first && store_run(conn, "d_sku", 4, p, created, errstr, errstr_size) != 0)
        goto done;
    r = STORE_OK;
done:
    return end_tx(conn, r, created, errstr, errstr_size);
}
