/* signup_store: the sign-up's SQL: codes, the rate limits' counts, opting a number out. */
#include "notifier.h"
#include "signup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const purpose_name[] = { "subscribe", "unsubscribe" };

/* First keys of the two-int advisory locks that serialise the limits' count-then-insert
 * per number and per client address ("dsgp", "dsgc"); the second is hashtext(key). Two
 * keys that collide merely wait for each other. */
#define LOCK_PHONE "1685284720"
#define LOCK_CLIENT "1685284707"

/* Inside the caller's transaction: takes the transaction-scoped locks of phone (unless
 * NULL) and then of client, always in that order so that two requests cannot wait on each
 * other, and only then counts the last hour's requests of each. Under READ COMMITTED the
 * count, a statement after the lock, sees every request committed by whoever held the lock
 * before, so parallel requests for one number are counted one after the other: without
 * this, N requests all counted before any inserted, all passed, and N SMS went out.
 * Returns 0, or -1 with errstr. */
static int limits_lock_count(PGconn *conn, const char *phone, const char *client,
                             long long *by_phone, long long *by_client,
                             char *errstr, size_t errstr_size)
{
    const char *p[2] = { phone != NULL ? phone : "", client };
    PGresult *res = NULL;
    int ret = -1;

    if (phone != NULL) {
        res = db_query(conn, "SELECT pg_advisory_xact_lock(" LOCK_PHONE ", hashtext($1))", 1,
                       &p[0], NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
        PQclear(res);
    }
    res = db_query(conn, "SELECT pg_advisory_xact_lock(" LOCK_CLIENT ", hashtext($1))", 1,
                   &p[1], NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    PQclear(res);
    res = db_query(conn,
        "SELECT (SELECT count(*) FROM signup_requests WHERE phone = $1 AND kind = 'code' "
        "        AND at > now() - interval '1 hour'), "
        "       (SELECT count(*) FROM signup_requests WHERE client = $2 "
        "        AND at > now() - interval '1 hour')", 2, p, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    *by_phone = store_column_ll(res, 0, 0);
    *by_client = store_column_ll(res, 0, 1);
    ret = 0;
done:
    PQclear(res);
    return ret;
}

static int request_put(PGconn *conn, const char *phone, const char *client, const char *kind,
                       char *errstr, size_t errstr_size)
{
    const char *p[3] = { phone, client, kind };
    PGresult *res = db_query(conn,
        "INSERT INTO signup_requests (phone, client, kind) VALUES ($1, $2, $3)", 3, p, NULL,
        errstr, errstr_size);

    PQclear(res);
    return res != NULL ? 0 : -1;
}

int signup_store_code_put(PGconn *conn, const char *phone, enum signup_purpose purpose,
                          const char *salt, const char *hash, long long ttl_ms,
                          const char *name, const char *skus, const char *client,
                          const struct signup_config *lim, long long *by_phone,
                          long long *by_client, char *errstr, size_t errstr_size)
{
    char ttl[24];
    const char *p[6] = { phone, purpose_name[purpose], salt, hash, ttl, name };
    const char *sk[2] = { phone, skus };
    PGresult *res = NULL;
    int ret = -1;

    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    if (limits_lock_count(conn, phone, client, by_phone, by_client, errstr, errstr_size) != 0)
        goto done;
    if ((ret = signup_limited(*by_phone, *by_client, lim)) != SIGNUP_ALLOWED)
        goto done;   /* rolled back below: nothing written, the locks go with it */
    ret = -1;
    res = db_query(conn,
        "INSERT INTO signup_codes (phone, purpose, salt, code_hash, expires_at, name) "
        "VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 millisecond', $6) "
        "ON CONFLICT (phone, purpose) DO UPDATE SET salt = EXCLUDED.salt, "
        "code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, "
        "name = EXCLUDED.name, attempts = 0, created_at = now()", 6, p, NULL, errstr,
        errstr_size);
    if (res == NULL)
        goto done;
    PQclear(res);
    res = NULL;
    if (purpose == SIGNUP_SUBSCRIBE) {
        res = db_query(conn, "UPDATE signup_codes SET skus = $2::jsonb "
                       "WHERE phone = $1 AND purpose = 'subscribe'", 2, sk, NULL, errstr,
                       errstr_size);
        if (res == NULL)
            goto done;
        PQclear(res);
        res = NULL;
    }
    if (request_put(conn, phone, client, "code", errstr, errstr_size) != 0)
        goto done;
    res = db_query(conn, "DELETE FROM signup_requests WHERE at < now() - interval '1 day'", 0,
                   NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    ret = SIGNUP_ALLOWED;
done:
    if (ret != SIGNUP_ALLOWED)
        db_rollback(conn);
    PQclear(res);
    return ret;
}

/* Subscribes phone with what its code row held: a new subscriber, or the skus added to the
 * active one. *out: the subscriber, masked. */
static int subscribe(PGconn *conn, const char *phone, const char *name, const char *skus_text,
                     json_t **out, char *errstr, size_t errstr_size)
{
    char existing[37];
    json_t *skus = json_loads(skus_text, 0, NULL), *sku;
    store_result_t r;
    size_t i;
    int ret = -1;

    if (!json_is_array(skus)) {
        util_errf(errstr, errstr_size, "stored skus are not a JSON array");
        goto done;
    }
    r = store_subscriber_add(conn, phone, name, skus, out, existing, errstr, errstr_size);
    if (r == STORE_OK) {
        json_object_set_new(*out, "status", json_string("subscribed"));
        ret = 0;
    } else if (r == STORE_CONFLICT) {
        json_array_foreach(skus, i, sku) {
            json_t *o = NULL;
            if (store_subscriber_sku(conn, existing, json_string_value(sku), 1, &o, errstr,
                                     errstr_size) == STORE_FAILED)
                goto done;
            json_decref(o);
        }
        if (store_subscriber_get(conn, existing, out, errstr, errstr_size) != STORE_OK)
            goto done;
        json_object_set_new(*out, "status", json_string("already_subscribed"));
        ret = 0;
    }
done:
    json_decref(skus);
    return ret;
}

int signup_store_confirm(PGconn *conn, const char *phone, enum signup_purpose purpose,
                         const char *code, long long max_attempts, const char *client,
                         const struct signup_config *lim, json_t **out, long long *left,
                         char *errstr, size_t errstr_size)
{
    const char *p[2] = { phone, purpose_name[purpose] };
    PGresult *res = NULL, *r2 = NULL;
    char name[4 * NOTIFIER_NAME_MAX + 1] = "", *skus = NULL;
    long long by_phone = 0, by_client = 0;
    int verdict = -1, has_row;

    *out = NULL;
    *left = 0;
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto fail;
    /* the client's lock before the code row's (FOR UPDATE), as in signup_store_code_put */
    if (limits_lock_count(conn, NULL, client, &by_phone, &by_client, errstr, errstr_size) != 0)
        goto fail;
    if (by_client >= lim->per_client) {
        db_rollback(conn);
        verdict = SIGNUP_CLIENT_LIMITED;
        goto done;
    }
    res = db_query(conn,
        "SELECT salt, code_hash, attempts, "
        "(extract(epoch FROM expires_at) * 1000)::bigint, "
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint, name, skus::text "
        "FROM signup_codes WHERE phone = $1 AND purpose = $2 FOR UPDATE", 2, p, NULL, errstr,
        errstr_size);
    if (res == NULL)
        goto fail;
    has_row = PQntuples(res) == 1;
    verdict = signup_decide(has_row, has_row ? PQgetvalue(res, 0, 0) : "",
                            has_row ? PQgetvalue(res, 0, 1) : "",
                            has_row ? store_column_ll(res, 0, 2) : 0,
                            has_row ? store_column_ll(res, 0, 3) : 0,
                            has_row ? store_column_ll(res, 0, 4) : 0, max_attempts, code);
    if (verdict == SIGNUP_WRONG) {
        *left = max_attempts - store_column_ll(res, 0, 2) - 1;
        r2 = db_query(conn, "UPDATE signup_codes SET attempts = attempts + 1 "
                      "WHERE phone = $1 AND purpose = $2", 2, p, NULL, errstr, errstr_size);
        if (r2 == NULL || request_put(conn, phone, client, "wrong", errstr, errstr_size) != 0)
            goto fail;
    } else if (has_row) {
        /* used up, expired or void: either way gone */
        snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 5));
        skus = strdup(PQgetvalue(res, 0, 6));
        r2 = db_query(conn, "DELETE FROM signup_codes WHERE phone = $1 AND purpose = $2", 2, p,
                      NULL, errstr, errstr_size);
        if (r2 == NULL || skus == NULL)
            goto fail;
    }
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto fail;
    if (verdict == SIGNUP_OK) {
        /* The code is spent; a failure now asks the person for a new one, which is safe. */
        if (purpose == SIGNUP_SUBSCRIBE) {
            if (subscribe(conn, phone, name, skus, out, errstr, errstr_size) != 0)
                goto fail;
        } else {
            int r = signup_store_opt_out(conn, phone, "page", errstr, errstr_size);
            if (r < 0)
                goto fail;
            *out = json_pack("{s:s, s:b}", "status", "unsubscribed", "was_subscribed", r == 1);
            if (*out == NULL) {
                util_errf(errstr, errstr_size, "out of memory");
                goto fail;
            }
        }
    }
    goto done;
fail:
    db_rollback(conn);
    json_decref(*out);
    *out = NULL;
    verdict = -1;
done:
    free(skus);
    PQclear(r2);
    PQclear(res);
    return verdict;
}

int signup_store_opt_out_in(PGconn *conn, const char *phone, const char *by,
                            char *errstr, size_t errstr_size)
{
    const char *p[2] = { phone, by };
    const char *id;
    PGresult *res;
    int ret = -1;

    res = db_query(conn, "UPDATE subscribers SET opted_out_at = now(), opted_out_by = $2 "
                   "WHERE phone = $1 AND opted_out_at IS NULL RETURNING id", 2, p, NULL,
                   errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        id = PQgetvalue(res, 0, 0);
        if (store_run(conn, "sub_cancel", 1, &id, NULL, errstr, errstr_size) != 0)
            goto done;
    }
    ret = PQntuples(res) == 1;
done:
    PQclear(res);
    return ret;
}

int signup_store_opt_out(PGconn *conn, const char *phone, const char *by,
                         char *errstr, size_t errstr_size)
{
    int ret;

    if (db_begin(conn, errstr, errstr_size) != 0)
        return -1;
    ret = signup_store_opt_out_in(conn, phone, by, errstr, errstr_size);
    if (ret < 0 || db_commit(conn, errstr, errstr_size) != 0) {
        db_rollback(conn);
        return -1;
    }
    return ret;
}

/* The sign-up's product list reads `inventory` directly, as sales does for GET /products
 * (docs/decisions.md: "The sign-up checks SKUs against the inventory"). */
json_t *signup_store_products(PGconn *conn, char *errstr, size_t errstr_size)
{
    char limit[24];
    const char *p[1] = { limit };
    PGresult *res;
    json_t *list = NULL, *out = NULL, *row;
    int i;

    snprintf(limit, sizeof(limit), "%d", SIGNUP_PRODUCTS_MAX);
    res = db_query(conn, "SELECT sku FROM inventory ORDER BY sku LIMIT $1::int", 1, p, NULL,
                   errstr, errstr_size);
    if (res == NULL)
        return NULL;
    if ((list = json_array()) == NULL)
        goto oom;
    for (i = 0; i < PQntuples(res); i++) {
        row = json_pack("{s:s}", "sku", PQgetvalue(res, i, 0));
        if (row == NULL || json_array_append_new(list, row) != 0)   /* steals row */
            goto oom;
    }
    out = json_pack("{s:o}", "products", list);   /* steals list, even on failure */
    list = NULL;
    if (out == NULL)
        goto oom;
    PQclear(res);
    return out;
oom:
    util_errf(errstr, errstr_size, "out of memory");
    json_decref(list);
    PQclear(res);
    return NULL;
}

int signup_store_unknown_skus(PGconn *conn, const char *skus_text, json_t **unknown,
                              char *errstr, size_t errstr_size)
{
    const char *p[1] = { skus_text };
    PGresult *res;
    int i, ret = -1;

    *unknown = NULL;
    res = db_query(conn,
        "SELECT DISTINCT t.sku FROM jsonb_array_elements_text($1::jsonb) AS t(sku) "
        "WHERE NOT EXISTS (SELECT 1 FROM inventory i WHERE i.sku = t.sku) ORDER BY t.sku",
        1, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if ((*unknown = json_array()) == NULL)
        goto oom;
    for (i = 0; i < PQntuples(res); i++) {
        if (json_array_append_new(*unknown, json_string(PQgetvalue(res, i, 0))) != 0)
            goto oom;
    }
    ret = 0;
    goto done;
oom:
    util_errf(errstr, errstr_size, "out of memory");
    json_decref(*unknown);
    *unknown = NULL;
done:
    PQclear(res);
    return ret;
}
