/* store: the sales service's SQL. Every statement is prepared with $n parameters. */
#include "sales.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const db_stmt_t store_stmts[] = {
    /* The conditional decrement: never below zero, and the row lock orders concurrent
     * orders of one SKU. */
    { "inv_decrement",
      "UPDATE inventory SET quantity = quantity - $2::int, updated_at = now() "
      "WHERE sku = $1 AND quantity >= $2::int RETURNING quantity", 2 },
    /* After a failed decrement: lock the row so that the level we report as available is
     * the one the decision was taken on. */
    { "inv_lock", "SELECT quantity FROM inventory WHERE sku = $1 FOR UPDATE", 1 },
    { "order_insert",
      "INSERT INTO orders (id, sku, quantity, status, customer, remaining, available) "
      "VALUES ($1::uuid, $2, $3::int, $4, $5, $6::int, $7::int)", 7 },
    { "order_get",
      "SELECT id, sku, quantity, status, customer, remaining, available, "
      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM orders WHERE id = $1::uuid", 1 },
    /* Serialises requests carrying the same key; released at commit or rollback. */
    { "idem_lock", "SELECT pg_advisory_xact_lock(1685024340, hashtext($1))", 1 },
    { "idem_get",
      "SELECT request, status_code, response FROM idempotency_keys WHERE key = $1", 1 },
    { "idem_put",
      "INSERT INTO idempotency_keys (key, request, status_code, response) "
      "VALUES ($1, $2, $3::int, $4)", 4 },
    OUTBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

/* Runs one statement and keeps only whether it worked and how many rows it returned or
 * touched. Returns the row count, or -1 with errstr. *first gets a copy of column 0 of row
 * 0 when first is not NULL and there is such a value. */
static int exec_count(PGconn *conn, const char *stmt, int n, const char *const *params,
                      char *first, size_t first_size, char *errstr, size_t errstr_size)
{
    PGresult *res;
    int rows;

    res = db_exec(conn, stmt, n, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        rows = PQntuples(res);
    else
        rows = (int)strtol(PQcmdTuples(res), NULL, 10);
    if (first != NULL && first_size > 0) {
        first[0] = '\0';
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
            PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
            snprintf(first, first_size, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rows;
}

/* Writes an event to the outbox: data is a new reference that this function consumes. */
static int add_event(PGconn *conn, const char *topic, const char *key, const char *type,
                     json_t *data, char *errstr, size_t errstr_size)
{
    char *text;
    int ret;

    if (data == NULL) {
        snprintf(errstr, errstr_size, "out of memory building %s", type);
        return -1;
    }
    text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (text == NULL) {
        snprintf(errstr, errstr_size, "out of memory serialising %s", type);
        return -1;
    }
    ret = outbox_add(conn, SALES_SERVICE, topic, key, type, SALES_SOURCE, text, NULL,
                     errstr, errstr_size);
    free(text);
    return ret;
}

/* Looks up a stored answer for key. Returns 1 with the stored status and body set (or with
 * *reused = 1 when the request differs), 0 when the key is new, -1 on error. */
static int idem_lookup(PGconn *conn, const char *key, const char *canonical, int *status,
                       json_t **body, int *reused, char *errstr, size_t errstr_size)
{
    const char *params[1] = { key };
    PGresult *res;
    json_error_t jerr;
    int ret = -1;

    res = db_exec(conn, "idem_get", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), canonical) != 0) {
        *reused = 1;
        ret = 1;
        goto done;
    }
    *status = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    *body = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    if (*body == NULL) {
        snprintf(errstr, errstr_size, "stored answer for key is not JSON: %s", jerr.text);
        goto done;
    }
    ret = 1;
done:
    PQclear(res);
    return ret;
}

store_outcome_t store_place_order(PGconn *conn, const order_request_t *req,
                                  const char *idem_key, int *status, json_t **body,
                                  char *errstr, size_t errstr_size)
{
    store_outcome_t outcome = STORE_FAILED;
    char order_id[UTIL_UUID_LEN + 1], qty[16], level[32], code[8];
    char *canonical = NULL, *answer = NULL;
    const char *customer = req->has_customer ? req->customer : NULL;
    json_t *resp = NULL;
    int rows, reused = 0, completed, committed = 0;
    long long left;

    *body = NULL;
    if (util_uuid_v4(order_id) != 0) {
        snprintf(errstr, errstr_size, "no randomness for an order id");
        return STORE_FAILED;
    }
    snprintf(qty, sizeof(qty), "%d", req->quantity);

    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;

    if (idem_key != NULL) {
        const char *p[1] = { idem_key };
        canonical = order_canonical(req);
        if (canonical == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
        if (exec_count(conn, "idem_lock", 1, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
        switch (idem_lookup(conn, idem_key, canonical, status, &resp, &reused,
                            errstr, errstr_size)) {
        case -1:
            goto done;
        case 1:
            outcome = reused ? STORE_KEY_REUSED : STORE_ANSWERED;
            goto done;
        default:
            break;
        }
    }

    {
        const char *p[2] = { req->sku, qty };
        rows = exec_count(conn, "inv_decrement", 2, p, level, sizeof(level),
                          errstr, errstr_size);
        if (rows < 0)
            goto done;
        if (rows == 0) {
            rows = exec_count(conn, "inv_lock", 1, p, level, sizeof(level),
                              errstr, errstr_size);
            if (rows < 0)
                goto done;
            if (rows == 0) {
                outcome = STORE_UNKNOWN_SKU;
                goto done;
            }
            /* The level may have risen between the two statements; with the row now
             * locked, a second decrement decides for good. */
            rows = 0;
            if (strtoll(level, NULL, 10) >= req->quantity) {
                rows = exec_count(conn, "inv_decrement", 2, p, level, sizeof(level),
                                  errstr, errstr_size);
                if (rows < 0)
                    goto done;
            }
        }
    }
    completed = rows > 0;
    left = strtoll(level, NULL, 10);

    {
        const char *p[7] = { order_id, req->sku, qty,
                             completed ? "completed" : "out_of_stock", customer,
                             completed ? level : NULL, completed ? NULL : level };
        if (exec_count(conn, "order_insert", 7, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
    }

    if (completed) {
        resp = json_pack("{s:s, s:s, s:s, s:i, s:I}", "order_id", order_id,
                         "status", "completed", "sku", req->sku,
                         "quantity", req->quantity, "remaining", (json_int_t)left);
        if (add_event(conn, "orders", req->sku, "order.completed",
                      json_pack("{s:s, s:s, s:i, s:I, s:s*}", "order_id", order_id,
                                "sku", req->sku, "quantity", req->quantity,
                                "remaining", (json_int_t)left, "customer", customer),
                      errstr, errstr_size) != 0)
            goto done;
        *status = 201;
    } else {
        resp = json_pack("{s:s, s:s, s:s, s:i, s:I, s:b}", "order_id", order_id,
                         "status", "out_of_stock", "sku", req->sku,
                         "requested", req->quantity, "available", (json_int_t)left,
                         "restock_requested", 1);
        if (add_event(conn, "orders", req->sku, "order.rejected",
                      json_pack("{s:s, s:s, s:i, s:I, s:s*}", "order_id", order_id,
                                "sku", req->sku, "requested", req->quantity,
                                "available", (json_int_t)left, "customer", customer),
                      errstr, errstr_size) != 0)
            goto done;
        if (add_event(conn, "stock.depleted", req->sku, "stock.depleted",
                      json_pack("{s:s, s:i, s:I, s:s}", "sku", req->sku,
                                "requested", req->quantity, "available", (json_int_t)left,
                                "order_id", order_id),
                      errstr, errstr_size) != 0)
            goto done;
        *status = 409;
    }
    if (resp == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }

    if (idem_key != NULL) {
        answer = json_dumps(resp, JSON_COMPACT);
        snprintf(code, sizeof(code), "%d", *status);
        const char *p[4] = { idem_key, canonical, code, answer };
        if (answer == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
        if (exec_count(conn, "idem_put", 4, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
    }

    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    committed = 1;
    outcome = STORE_ANSWERED;

done:
    if (!committed)
        db_rollback(conn); /* also ends a replay, which wrote nothing */
    if (outcome == STORE_ANSWERED) {
        *body = resp;
        resp = NULL;
    }
    json_decref(resp);
    free(canonical);
    free(answer);
    return outcome;
}

int store_get_order(PGconn *conn, const char *id, json_t **order,
                    char *errstr, size_t errstr_size)
{
    const char *params[1] = { id };
    PGresult *res;
    json_t *o;
    int ret = -1;

    *order = NULL;
    res = db_exec(conn, "order_get", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto done;
    }
    o = json_pack("{s:s, s:s, s:s, s:I}", "order_id", PQgetvalue(res, 0, 0),
                  "status", PQgetvalue(res, 0, 3), "sku", PQgetvalue(res, 0, 1),
                  "quantity", (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    if (o == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (!PQgetisnull(res, 0, 4))
        json_object_set_new(o, "customer", json_string(PQgetvalue(res, 0, 4)));
    if (!PQgetisnull(res, 0, 5))
        json_object_set_new(o, "remaining",
                            json_integer(strtoll(PQgetvalue(res, 0, 5), NULL, 10)));
    if (!PQgetisnull(res, 0, 6))
        json_object_set_new(o, "available",
                            json_integer(strtoll(PQgetvalue(res, 0, 6), NULL, 10)));
    json_object_set_new(o, "created_at", json_string(PQgetvalue(res, 0, 7)));
    *order = o;
    ret = 1;
done:
    PQclear(res);
    return ret;
}
