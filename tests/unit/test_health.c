/* Unit tests for libcommon/health.c: consumer group readiness, and the metadata watcher's
 * answer when no broker answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "health.h"
#include "log.h"

static void test_groups(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);
    health_consumer_created("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "consumer group 'stock'"));
    health_consumer_assigned("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);

    /* a second group, and a second member of the first, counted once */
    health_consumer_created("factory");
    health_consumer_created("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'factory'"));
    health_consumer_assigned("factory");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);

    health_consumer_lost("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), -1);
    health_consumer_assigned("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);

    /* an unknown group changes nothing */
    health_consumer_lost("nobody");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);

    health_consumer_closed("stock");
    health_consumer_closed("stock");
    health_consumer_closed("factory");
    /* a group closed and created again must join again */
    health_consumer_created("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), -1);
    health_consumer_closed("stock");
    assert_int_equal(health_consumers_ready(err, sizeof(err)), 0);
}

static void test_metadata_without_a_broker(void **state)
{
    char err[256] = "";
    health_kafka_t *hk = health_kafka_start("127.0.0.1:1", "test_health", err, sizeof(err));

    (void)state;
    assert_non_null(hk);
    assert_int_equal(health_kafka_status(hk, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no Kafka metadata yet"));
    health_kafka_stop(hk);
    assert_int_equal(health_kafka_status(NULL, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_metadata_without_a_broker),
    };

    log_init("test_health");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
