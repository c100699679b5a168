/* store: the factory service's SQL. Every statement is prepared with $n parameters. */
#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "util.h"

#define ORDER_COLUMNS                                                                    \
    "id, sku, quantity, status, attempts, last_error, factory_order_id, "                \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "       \
    "to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "  \
    "to_char(requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "     \
    "to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "     \
    "delivered_quantity"

const db_stmt_t store_stmts[] = {
    { "batch_of", "SELECT restock_batch FROM inventory WHERE sku = $1", 1 },
    /* At most one open order per SKU (the partial unique index), and none for a
     * depletion that a later delivery already answered. */
    { "po_open",
      "INSERT INTO production_orders (id, sku, quantity, status, callback_token, "
      "depletion_ce_id) SELECT $1::uuid, $2, $3::int, 'pending', $4, $5::uuid "
      "WHERE NOT EXISTS (SELECT 1 FROM production_orders WHERE sku = $2 "
      "AND status = 'delivered' AND delivered_at > $6::timestamptz) "
      "ON CONFLICT (sku) WHERE status IN ('pending', 'requested') DO NOTHING "
      "RETURNING id", 6 },
    /* The lease (next_attempt_at in the future) keeps other workers off the order while
     * the call is in flight, without holding a transaction open across it. */
    { "po_claim",
      "UPDATE production_orders p SET attempts = p.attempts + 1, status = 'pending', "
      "next_attempt_at = now() + make_interval(secs => $1::float8 / 1000) "
      "WHERE p.id = (SELECT id FROM production_orders "
      "  WHERE (status = 'pending' AND next_attempt_at <= now()) "
      "     OR (status = 'requested' AND requested_at < now() - "
      "         make_interval(secs => $2::float8 / 1000)) "
      "  ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
      "RETURNING p.id, p.sku, p.quantity, p.callback_token, p.attempts", 2 },
    { "po_requested",
      "UPDATE production_orders SET status = 'requested', factory_order_id = $2, "
      "requested_at = now(), last_error = NULL WHERE id = $1::uuid AND status = 'pending'", 2 },
    { "po_failed",
      "UPDATE production_orders SET last_error = $2, "
      "next_attempt_at = now() + make_interval(secs => $3::float8 / 1000) "
      "WHERE id = $1::uuid AND status = 'pending'", 3 },
    { "po_lock_id",
      "SELECT id, sku, status, callback_token FROM production_orders "
      "WHERE id = $1::uuid FOR UPDATE", 1 },
    { "po_lock_fo",
      "SELECT id, sku, status, callback_token FROM production_orders "
      "WHERE factory_order_id = $1 FOR UPDATE", 1 },
    { "po_delivered",
      "UPDATE production_orders SET status = 'delivered', delivered_at = now(), "
      "delivered_quantity = $2::int, factory_order_id = COALESCE(factory_order_id, $3) "
      "WHERE id = $1::uuid", 3 },
    { "po_list",
      "SELECT " ORDER_COLUMNS " FROM production_orders "
      "WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR status = $2) "
      "ORDER BY created_at DESC LIMIT $3::int", 3 },
    { "po_get", "SELECT " ORDER_COLUMNS " FROM production_orders WHERE id = $1::uuid", 1 },
    INBOX_DB_STMT,
    OUTBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

int store_open_order(PGconn *conn, const char *ce_id, const char *sku,
                     const char *depleted_at, char *errstr, size_t errstr_size)
{
    char id[UTIL_UUID_LEN + 1], token[UTIL_UUID_LEN + 1], batch[16];
    PGresult *res = NULL;
    int ret = -1, first;

    if (util_uuid_v4(id) != 0 || util_uuid_v4(token) != 0) {
        snprintf(errstr, errstr_size, "no randomness");
        return -1;
    }
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    first = inbox_claim(conn, FACTORY_SERVICE, ce_id, errstr, errstr_size);
    if (first <= 0) {
        ret = first < 0 ? -1 : 0;
        goto done;
    }
    {
        const char *p[1] = { sku };
        res = db_exec(conn, "batch_of", 1, p, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
        if (PQntuples(res) == 0) {
            snprintf(errstr, errstr_size, "unknown sku '%s'", sku);
            ret = -2;
            goto done;
        }
        snprintf(batch, sizeof(batch), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
    }
    {
        const char *p[6] = { id, sku, batch, token, ce_id, depleted_at };
        res = db_exec(conn, "po_open", 6, p, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
    }
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    ret = PQntuples(res) > 0 ? 1 : 0;
done:
    PQclear(res);
    if (ret == -1 || ret == -2)
        db_rollback(conn);
    else if (ret == 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
        db_commit(conn, errstr, errstr_size); /* a duplicate: nothing to keep, end it */
    return ret;
}

int store_claim(PGconn *conn, long long lease_ms, long long delivery_timeout_ms,
                struct claim *c, char *errstr, size_t errstr_size)
{
    char lease[24], timeout[24];
    const char *p[2] = { lease, timeout };
    PGresult *res;
    int ret = 0;

    snprintf(lease, sizeof(lease), "%lld", lease_ms);
    snprintf(timeout, sizeof(timeout), "%lld", delivery_timeout_ms);
    res = db_exec(conn, "po_claim", 2, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        memset(c, 0, sizeof(*c));
        snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(res, 0, 0));
        snprintf(c->sku, sizeof(c->sku), "%s", PQgetvalue(res, 0, 1));
        c->quantity = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
        snprintf(c->token, sizeof(c->token), "%s", PQgetvalue(res, 0, 3));
        c->attempt = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
        ret = 1;
    }
    PQclear(res);
    return ret;
}

/* Runs a statement whose result carries nothing we need. */
static int exec_only(PGconn *conn, const char *stmt, int n, const char *const *p,
                     char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, stmt, n, p, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int store_requested(PGconn *conn, const char *id, const char *factory_order_id,
                    char *errstr, size_t errstr_size)
{
    const char *p[2] = { id, factory_order_id };

    return exec_only(conn, "po_requested", 2, p, errstr, errstr_size);
}

int store_call_failed(PGconn *conn, const char *id, const char *error, long long retry_ms,
                      char *errstr, size_t errstr_size)
{
    char ms[24];
    const char *p[3] = { id, error, ms };

    snprintf(ms, sizeof(ms), "%lld", retry_ms);
    return exec_only(conn, "po_failed", 3, p, errstr, errstr_size);
}

store_delivery_t store_deliver(PGconn *conn, const char *po, const char *token,
                               const char *factory_order_id, const char *sku,
                               long long quantity, char *order_id,
                               char *errstr, size_t errstr_size)
{
    store_delivery_t out = DELIVERY_FAILED;
    PGresult *res = NULL;
    json_t *data = NULL;
    char *text = NULL, qty[24];
    int committed = 0;

    order_id[0] = '\0';
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    {
        const char *p[1] = { po != NULL ? po : factory_order_id };
        res = db_exec(conn, po != NULL ? "po_lock_id" : "po_lock_fo", 1, p, NULL, errstr,
                      errstr_size);
        if (res == NULL)
            goto done;
    }
    if (PQntuples(res) == 0 ||
        (po != NULL && (token == NULL || !util_streq_ct(token, PQgetvalue(res, 0, 3))))) {
        out = DELIVERY_UNKNOWN;
        goto done;
    }
    snprintf(order_id, UTIL_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
    if (strcmp(PQgetvalue(res, 0, 2), "delivered") == 0) {
        out = DELIVERY_REPEATED;
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 1), sku) != 0) {
        out = DELIVERY_SKU_MISMATCH;
        goto done;
    }
    PQclear(res);
    res = NULL;

    snprintf(qty, sizeof(qty), "%lld", quantity);
    {
        const char *p[3] = { order_id, qty, factory_order_id };
        if (exec_only(conn, "po_delivered", 3, p, errstr, errstr_size) != 0)
            goto done;
    }
    data = json_pack("{s:s, s:I, s:s, s:s}", "sku", sku, "quantity", (json_int_t)quantity,
                     "production_order_id", order_id, "factory_order_id", factory_order_id);
    text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    if (text == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (outbox_add(conn, FACTORY_SERVICE, "stock.replenished", sku, "stock.replenished",
                   FACTORY_SOURCE, text, NULL, errstr, errstr_size) != 0)
        goto done;
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    committed = 1;
    out = DELIVERY_APPLIED;
done:
    if (!committed)
        db_rollback(conn);
    PQclear(res);
    json_decref(data);
    free(text);
    return out;
}

/* One row of ORDER_COLUMNS as a new JSON object (NULL columns left out). */
static json_t *order_json(const PGresult *res, int row)
{
    static const char *const names[] = { "production_order_id", "sku", "quantity", "status",
                                          "attempts", "last_error", "factory_order_id",
                                          "created_at", "next_attempt_at", "requested_at",
                                          "delivered_at", "delivered_quantity" };
    json_t *o = json_object();

    for (int i = 0; o != NULL && i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        json_t *v;

        if (PQgetisnull(res, row, i))
            continue;
        if (i == 2 || i == 4 || i == 11)
            v = json_integer(strtoll(PQgetvalue(res, row, i), NULL, 10));
        else
            v = json_string(PQgetvalue(res, row, i));
        if (json_object_set_new(o, names[i], v) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

json_t *store_list(PGconn *conn, const char *sku, const char *status, int limit,
                   char *errstr, size_t errstr_size)
{
    char lim[16];
    const char *p[3] = { sku, status, lim };
    PGresult *res;
    json_t *list;

    snprintf(lim, sizeof(lim), "%d", limit);
    res = db_exec(conn, "po_list", 3, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return NULL;
    list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        if (json_array_append_new(list, order_json(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        snprintf(errstr, errstr_size, "out of memory");
    PQclear(res);
    return list;
}

int store_get(PGconn *conn, const char *id, json_t **order, char *errstr, size_t errstr_size)
{
    const char *p[1] = { id };
    PGresult *res;
    int ret = 0;

    *order = NULL;
    res = db_exec(conn, "po_get", 1, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        *order = order_json(res, 0);
        ret = *order != NULL ? 1 : -1;
        if (ret < 0)
            snprintf(errstr, errstr_size, "out of memory");
    }
    PQclear(res);
    return ret;
}
