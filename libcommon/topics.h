/* topics: the one declaration of the project's Kafka topics, used by every path. */
#ifndef DOZEN_TOPICS_H
#define DOZEN_TOPICS_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

typedef struct topic_spec {
    const char *name;
    int partitions;
    int replication_factor;
    long long retention_ms;     /* -1: the broker's default */
    const char *cleanup_policy; /* "delete" or "compact" */
} topic_spec_t;

extern const topic_spec_t topics_all[];
extern const size_t topics_count;

#define TOPICS_REPLICATION_MAX 16  /* the largest TOPIC_REPLICATION_FACTOR accepted */

/* Reads the deployment's replication settings for the topics it creates:
 * TOPIC_REPLICATION_FACTOR (default 1, 1..TOPICS_REPLICATION_MAX) and
 * TOPIC_MIN_INSYNC_REPLICAS (default 1, at most the factor), set as the topic config
 * min.insync.replicas so that an acks=all write needs that many copies. The defaults fit one
 * broker; a three-broker cluster wants 3 and 2. Topics that exist are never changed. Returns
 * 0, or -1 with errstr naming the bad variable and value. */
int topics_replication(int *replication_factor, int *min_insync_replicas, char *errstr,
                       size_t errstr_size);

/* Returns the declaration of a topic, or NULL when it is not one of ours. */
const topic_spec_t *topics_find(const char *name);

/* Makes sure the declared topics exist on the cluster at bootstrap. Topics that are missing
 * are created through the Admin API (CreateTopics) with their declared partitions,
 * replication factor, retention and cleanup policy; a topic that exists is left exactly as
 * it is. names is a NULL-terminated list of declared topic names, or NULL for all of them.
 * Waits up to timeout_ms for the cluster to answer and for new topics to appear. Returns 0,
 * or -1 with errstr naming the first topic that is missing and could not be created (or
 * saying that the cluster did not answer). KAFKA_* properties apply as in kafka_conf_new. */
int topics_ensure(const char *bootstrap, const char *const *names, int timeout_ms,
                  char *errstr, size_t errstr_size);

/* Makes sure the redelivery topic of consumer group group, retry.<group>, exists, as
 * topics_ensure does for a declared topic: declared ones as declared, any other group's
 * with the spec of the declared retry.<group> topics. So a group chosen at deployment
 * (STOCK_GROUP, FACTORY_GROUP) gets its redeliveries; the consumer loop calls this before
 * it subscribes. Returns 0, or -1 with errstr (a group that cannot name a topic, a cluster
 * that did not answer, a topic that could not be created). */
int topics_ensure_redelivery(const char *bootstrap, const char *group, int timeout_ms,
                             char *errstr, size_t errstr_size);

/* The Kafka part of a service's start: checks the KAFKA_* settings (kafka_conf_new) and
 * makes sure every declared topic exists (topics_ensure), waiting up to wait_ms for the
 * cluster. Returns 0, or -1 with errstr naming the bad variable or the missing topic. */
int topics_service_ready(const char *bootstrap, const char *client_id, int wait_ms,
                         char *errstr, size_t errstr_size);

/* A topic's live settings, as DescribeConfigs reports them. */
typedef struct topic_config {
    char retention_ms[32];    /* "" when unknown */
    char cleanup_policy[32];  /* "" when unknown */
} topic_config_t;

/* Reads retention.ms and cleanup.policy of n topics with one DescribeConfigs request on an
 * existing client rk. out has n entries. Returns 0, or -1 with errstr when the cluster cannot
 * tell (the dev broker does not implement DescribeConfigs); entries stay "" then. */
int topics_describe(rd_kafka_t *rk, const char *const *names, size_t n, topic_config_t *out,
                    int timeout_ms, char *errstr, size_t errstr_size);

#endif
