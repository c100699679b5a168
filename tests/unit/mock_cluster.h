/* mock_cluster: librdkafka's in-process mock cluster for the unit tests that need a broker
 * (test_event, test_kafka*, test_kafka_reader): one broker, started once per group. */
#ifndef DOZEN_TEST_MOCK_CLUSTER_H
#define DOZEN_TEST_MOCK_CLUSTER_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"

/* Starts the log as log_name and a one-broker mock cluster on an anchor handle (*rk, freed
 * by mock_cluster_stop); *bootstrap is its address. Returns 0, or -1. */
static inline int mock_cluster_start(const char *log_name, rd_kafka_t **rk,
                                     rd_kafka_mock_cluster_t **mock, const char **bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    log_init(log_name);
    /* The anchor handle has no brokers of its own; its notice saying so is noise. */
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (*rk == NULL)
        return -1;
    *mock = rd_kafka_mock_cluster_new(*rk, 1);
    if (*mock == NULL)
        return -1;
    *bootstrap = rd_kafka_mock_cluster_bootstraps(*mock);
    return 0;
}

/* Stops what mock_cluster_start started; accepts NULLs. Free every message of rk first:
 * rd_kafka_destroy waits for them. */
static inline void mock_cluster_stop(rd_kafka_t *rk, rd_kafka_mock_cluster_t *mock)
{
    if (mock != NULL)
        rd_kafka_mock_cluster_destroy(mock);
    if (rk != NULL)
        rd_kafka_destroy(rk);
}

#endif
