/* topics: the one declaration of the project's Kafka topics, used by every path. */
#include "topics.h"

#include <string.h>

/* Six partitions for the keyed business topics (per-SKU ordering, room for six consumers
 * per group); three for the low-volume retry and dead-letter topics. Replication factor 1
 * suits the single-broker dev and compose set-ups. Dead letters are kept 14 days so an
 * operator can inspect and replay them; everything else uses the broker's retention. */
const topic_spec_t topics_all[] = {
    { "orders",            6, 1, -1LL,         "delete" },
    { "stock.depleted",    6, 1, -1LL,         "delete" },
    { "stock.replenished", 6, 1, -1LL,         "delete" },
    { "retry",             3, 1, -1LL,         "delete" },
    { "dead-letter",       3, 1, 1209600000LL, "delete" },
};

const size_t topics_count = sizeof(topics_all) / sizeof(topics_all[0]);

const topic_spec_t *topics_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < topics_count; i++) {
        if (strcmp(topics_all[i].name, name) == 0)
            return &topics_all[i];
    }
    return NULL;
}
