/* health: what /readyz asks beyond a service's own check: is Kafka metadata fresh (a
 * watcher thread asks the cluster for it every few seconds), and has every consumer group
 * member of this process joined its group (kafka_consumer_join's rebalance callback
 * reports here). */
#ifndef DOZEN_HEALTH_H
#define DOZEN_HEALTH_H

#include <stddef.h>

#define HEALTH_METADATA_INTERVAL_MS 3000   /* how often the watcher asks for metadata */
#define HEALTH_METADATA_MAX_AGE_MS  15000  /* older than this: not ready */
#define HEALTH_GROUPS_MAX           16

/* Called by kafka_consumer_join when a member of group is created: from now on the process
 * is not ready until it has joined. A group registered twice (two members) counts once. */
void health_consumer_created(const char *group);

/* Called by the rebalance callback: an assignment (possibly empty: a member with no
 * partitions is still a working member) was received; or the assignment was lost (the
 * session expired, the member must rejoin) or the rebalance failed. */
void health_consumer_assigned(const char *group);
void health_consumer_lost(const char *group);

/* Called by kafka_consumer_leave: the member is gone on purpose; no longer asked. */
void health_consumer_closed(const char *group);

/* 0 when every registered group has an assignment, else -1 with errstr naming one
 * ("consumer group 'stock' has no partition assignment yet"). */
int health_consumers_ready(char *errstr, size_t errstr_size);

typedef struct health_kafka health_kafka_t;

/* Starts the metadata watcher: a client of its own (kafka_conf_new(bootstrap, client_id))
 * and a thread asking for cluster metadata every HEALTH_METADATA_INTERVAL_MS. Returns it,
 * or NULL with errstr. */
health_kafka_t *health_kafka_start(const char *bootstrap, const char *client_id,
                                   char *errstr, size_t errstr_size);

/* 0 when metadata was received within HEALTH_METADATA_MAX_AGE_MS, else -1 with errstr
 * ("Kafka metadata is 21 s old: <last error>"). Never blocks on the network. */
int health_kafka_status(health_kafka_t *hk, char *errstr, size_t errstr_size);

/* Stops the watcher and frees it. Accepts NULL. */
void health_kafka_stop(health_kafka_t *hk);

#endif
