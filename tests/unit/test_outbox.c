/* Unit tests for the outbox writer (libcommon/outbox.c): the checks outbox_add() makes before
 * it runs any SQL. No server: a connection that failed to open stands in for the database,
 * so a call that passes every check fails only when it reaches the INSERT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outbox.h"
#include "outbox_int.h"

#define PAYLOAD "{\"sku\":\"A-1\"}"

static void test_topic_names_kafka_accepts(void **state)
{
    char longest[250], too_long[251];

    (void)state;
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';

    assert_true(outbox_topic_name_ok("orders"));
    assert_true(outbox_topic_name_ok("stock.replenished"));
    assert_true(outbox_topic_name_ok("retry.dozen-stock_2"));
    assert_true(outbox_topic_name_ok("..."));
    assert_true(outbox_topic_name_ok(longest));
    assert_false(outbox_topic_name_ok(too_long));
    assert_false(outbox_topic_name_ok(""));
    assert_false(outbox_topic_name_ok("."));
    assert_false(outbox_topic_name_ok(".."));
    assert_false(outbox_topic_name_ok("two words"));
    assert_false(outbox_topic_name_ok("a/b"));
    assert_false(outbox_topic_name_ok("a:b"));
    assert_false(outbox_topic_name_ok("caf\xc3\xa9"));
    assert_false(outbox_topic_name_ok("tab\t"));
}

static void test_check_accepts_a_good_event(void **state)
{
    char err[128] = "";

    (void)state;
    assert_int_equal(outbox_add_check("sales", "orders", PAYLOAD, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    /* The payload is not parsed here: the caller built it. An empty one is still one. */
    assert_int_equal(outbox_add_check("sales", "orders", "", err, sizeof(err)), 0);
}

static void test_check_missing_arguments(void **state)
{
    char err[128];

    (void)state;
    assert_int_equal(outbox_add_check(NULL, "orders", PAYLOAD, err, sizeof(err)), -1);
    assert_string_equal(err, "outbox_add: missing argument");
    err[0] = '\0';
    assert_int_equal(outbox_add_check("", "orders", PAYLOAD, err, sizeof(err)), -1);
    assert_string_equal(err, "outbox_add: missing argument");
    err[0] = '\0';
    assert_int_equal(outbox_add_check("sales", NULL, PAYLOAD, err, sizeof(err)), -1);
    assert_string_equal(err, "outbox_add: missing argument");
    err[0] = '\0';
    assert_int_equal(outbox_add_check("sales", "orders", NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "outbox_add: missing argument");
}

static void test_check_bad_topic_is_named(void **state)
{
    char err[128], topic[300];

    (void)state;
    assert_int_equal(outbox_add_check("sales", "no such/topic", PAYLOAD, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "outbox_add: bad topic name 'no such/topic'");

    /* A long bad name is cut in the message, and a small errstr is not overrun. */
    memset(topic, 'x', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    assert_int_equal(outbox_add_check("sales", topic, PAYLOAD, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), strlen("outbox_add: bad topic name ''") + 64);
    assert_int_equal(outbox_add_check("sales", topic, PAYLOAD, err, 8), -1);
    assert_string_equal(err, "outbox_");
}

/* A connection that never opened: libpq gives a PGconn in CONNECTION_BAD at once. */
static PGconn *dead_conn(void)
{
    PGconn *conn = PQconnectdb("host=/nonexistent-dozen-test-socket-dir connect_timeout=1");

    assert_non_null(conn);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    return conn;
}

static void test_add_without_connection(void **state)
{
    char err[128];

    (void)state;
    assert_int_equal(outbox_add(NULL, "sales", "orders", "k", "order.completed",
                                "/dozen/sales", PAYLOAD, NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "outbox_add: missing argument");
}

/* Every check comes before the INSERT: a bad argument is reported as such, not as the
 * database's failure. */
static void test_add_checks_before_sql(void **state)
{
    PGconn *conn = dead_conn();
    char err[256], ce_id[37] = "untouched", type[80];

    (void)state;
    assert_int_equal(outbox_add(conn, "sales", "bad topic", "k", "order.completed",
                                "/dozen/sales", PAYLOAD, ce_id, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "outbox_add: bad topic name 'bad topic'");
    assert_int_equal(outbox_add(conn, "", "orders", "k", "order.completed", "/dozen/sales",
                                PAYLOAD, ce_id, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "outbox_add: missing argument");
    assert_int_equal(outbox_add(conn, "sales", "orders", "k", "order.completed",
                                "/dozen/sales", NULL, ce_id, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "outbox_add: missing argument");

    /* ce_type and ce_source: present and within the event's sizes (event_meta_new). */
    assert_int_equal(outbox_add(conn, "sales", "orders", "k", "", "/dozen/sales", PAYLOAD,
                                ce_id, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "ce_type"));
    memset(type, 't', sizeof(type) - 1);
    type[sizeof(type) - 1] = '\0';
    assert_int_equal(outbox_add(conn, "sales", "orders", "k", type, "/dozen/sales", PAYLOAD,
                                ce_id, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "ce_type"));
    assert_int_equal(outbox_add(conn, "sales", "orders", "k", "order.completed", NULL,
                                PAYLOAD, ce_id, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "ce_source"));
    assert_string_equal(ce_id, "untouched");
    PQfinish(conn);
}

/* With every argument good (a NULL key is a record without key), the call gets as far as
 * the INSERT, which fails on the dead connection; no ce_id is handed out. */
static void test_add_good_arguments_reach_the_database(void **state)
{
    PGconn *conn = dead_conn();
    char err[256] = "", ce_id[37] = "untouched";

    (void)state;
    assert_int_equal(outbox_add(conn, "sales", "orders", NULL, "order.completed",
                                "/dozen/sales", PAYLOAD, ce_id, err, sizeof(err)),
                     -1);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "outbox_add"));
    assert_null(strstr(err, "ce_type"));
    assert_null(strstr(err, "ce_source"));
    assert_string_equal(ce_id, "untouched");
    PQfinish(conn);
}

/* A lease the server could not keep (below DB_LEASE_MIN_MS) or absurd is refused before the
 * relay starts anything. */
static void test_relay_lease_range(void **state)
{
    outbox_relay_opts_t o;
    char err[256];

    (void)state;
    memset(&o, 0, sizeof(o));
    o.conninfo = "host=127.0.0.1 port=1 dbname=dozen";
    o.bootstrap = "127.0.0.1:1";
    o.producer = "test";
    o.lease_ms = DB_LEASE_MIN_MS - 1;
    assert_null(outbox_relay_start(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "lease"));
    o.lease_ms = DB_LEASE_MAX_MS + 1;
    assert_null(outbox_relay_start(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "lease"));
    o.lease_ms = -1;
    assert_null(outbox_relay_start(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "lease"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_names_kafka_accepts),
        cmocka_unit_test(test_check_accepts_a_good_event),
        cmocka_unit_test(test_check_missing_arguments),
        cmocka_unit_test(test_check_bad_topic_is_named),
        cmocka_unit_test(test_add_without_connection),
        cmocka_unit_test(test_add_checks_before_sql),
        cmocka_unit_test(test_add_good_arguments_reach_the_database),
        cmocka_unit_test(test_relay_lease_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
