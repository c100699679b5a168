/* topics: the one declaration of the project's Kafka topics, used by every path. */
#ifndef DOZEN_TOPICS_H
#define DOZEN_TOPICS_H

#include <stddef.h>

typedef struct topic_spec {
    const char *name;
    int partitions;
    int replication_factor;
    long long retention_ms;     /* -1: the broker's default */
    const char *cleanup_policy; /* "delete" or "compact" */
} topic_spec_t;

extern const topic_spec_t topics_all[];
extern const size_t topics_count;

/* Returns the declaration of a topic, or NULL when it is not one of ours. */
const topic_spec_t *topics_find(const char *name);

#endif
