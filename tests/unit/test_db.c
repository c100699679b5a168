/* Unit tests for libcommon/db.c that need no server: option checks, argument checks, and
 * how the pool behaves when the server cannot be reached (nothing listens on port 1, so
 * every connect is refused at once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db.h"
#include "util.h"

#define UNREACHABLE "host=127.0.0.1 port=1 dbname=dozen user=dozen connect_timeout=2"

static const db_stmt_t stmts[] = {
    { "one", "SELECT 1", 0 },
};

static void test_pool_options(void **state)
{
    char err[256];
    db_pool_t *p;

    (void)state;
    assert_null(db_pool_new(UNREACHABLE, 0, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "pool size must be positive, not 0");
    assert_null(db_pool_new(UNREACHABLE, -3, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "pool size must be positive, not -3");
    assert_null(db_pool_new(UNREACHABLE, 2, NULL, 1, err, sizeof(err)));
    assert_string_equal(err, "statements missing");
    assert_null(db_pool_new(NULL, 2, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "no connection string");

    /* A connection string that does not parse is refused at once, in one line, and the
     * parser's message does not repeat the password. */
    err[0] = '\0';
    assert_null(db_pool_new("host=x password=s3cret dbname='unterminated", 2, NULL, 0, err,
                            sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "s3cret"));
    assert_null(db_pool_new("nosuchoption=1", 1, NULL, 0, err, sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);

    /* A valid string makes a pool without connecting: connections are opened lazily. */
    p = db_pool_new(UNREACHABLE, 2, stmts, 1, err, sizeof(err));
    assert_non_null(p);
    db_pool_free(p);
    p = db_pool_new("postgresql://dozen@127.0.0.1:1/dozen", 1, NULL, 0, err, sizeof(err));
    assert_non_null(p);
    db_pool_free(p);
    db_pool_free(NULL);
}

static void test_unreachable_server(void **state)
{
    char err[256];
    db_pool_t *p = db_pool_new(UNREACHABLE, 1, stmts, 1, err, sizeof(err));
    PGconn *c;
    int64_t t0;
    int i;

    (void)state;
    assert_non_null(p);
    /* A failed connect gives its slot back: the next acquire tries again (and fails the
     * same way) instead of waiting for a free connection. */
    for (i = 0; i < 3; i++) {
        err[0] = '\0';
        t0 = util_mono_ms();
        c = db_acquire(p, 200, err, sizeof(err));
        assert_null(c);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "no free database connection"));
        assert_null(strchr(err, '\n')); /* libpq's multi-line message, joined */
        assert_true(util_mono_ms() - t0 < 5000);
    }
    assert_int_equal(db_ping(p, 200, err, sizeof(err)), -1);
    assert_null(strstr(err, "no free database connection"));
    db_pool_free(p);

    assert_null(db_connect(UNREACHABLE, NULL, 0, err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    assert_null(db_connect("dbname='x", NULL, 0, err, sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);
}

static void test_bad_arguments(void **state)
{
    const char *params[1] = { "1" };
    char err[256], sqlstate[6];
    PGconn *bad;

    (void)state;
    assert_null(db_acquire(NULL, 10, err, sizeof(err)));
    assert_string_equal(err, "no database pool");
    db_release(NULL, NULL);

    memcpy(sqlstate, "XXXXX", 6);
    assert_null(db_exec(NULL, "one", 0, NULL, sqlstate, err, sizeof(err)));
    assert_string_equal(err, "no database connection");
    assert_string_equal(sqlstate, "");
    assert_null(db_query(NULL, "SELECT 1", 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no database connection");
    assert_int_equal(db_begin(NULL, err, sizeof(err)), -1);
    assert_int_equal(db_commit(NULL, err, sizeof(err)), -1);
    assert_int_equal(db_rollback(NULL), -1);

    /* A connection object that never connected (CONNECTION_BAD) is not NULL: the argument
     * checks come first, then libpq's own failure, with no SQLSTATE. */
    bad = PQconnectdb(UNREACHABLE);
    assert_non_null(bad);
    assert_int_not_equal(PQstatus(bad), CONNECTION_OK);
    assert_null(db_exec(bad, NULL, 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no statement name");
    assert_null(db_query(bad, NULL, 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no SQL");
    assert_null(db_query(bad, "SELECT $1", -1, params, NULL, err, sizeof(err)));
    assert_string_equal(err, "bad parameter list");
    assert_null(db_query(bad, "SELECT $1", 1, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "bad parameter list");
    memcpy(sqlstate, "XXXXX", 6);
    err[0] = '\0';
    assert_null(db_query(bad, "SELECT $1", 1, params, sqlstate, err, sizeof(err)));
    assert_string_equal(sqlstate, "");
    assert_true(err[0] != '\0');
    assert_int_equal(db_rollback(bad), -1); /* not even a transaction status to read */

    /* A connection the pool never handed out is refused (and logged), not adopted. */
    {
        db_pool_t *p = db_pool_new(UNREACHABLE, 1, NULL, 0, err, sizeof(err));

        assert_non_null(p);
        db_release(p, bad);
        db_pool_free(p);
    }
    PQfinish(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_options),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_bad_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
