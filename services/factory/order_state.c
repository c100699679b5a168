/* order_state: the production order's states and its one transition function. Pure. */
#include "factory.h"

#include <string.h>

static const char *const names[PO_STATE_COUNT] = {
    [PO_PENDING] = PO_PENDING_NAME,
    [PO_REQUESTED] = PO_REQUESTED_NAME,
    [PO_DELIVERED] = PO_DELIVERED_NAME,
    [PO_FAILED] = PO_FAILED_NAME,
};

const char *po_state_name(po_state_t s)
{
    return (unsigned)s < PO_STATE_COUNT ? names[s] : NULL;
}

int po_state_parse(const char *name, po_state_t *s)
{
    for (int i = 0; name != NULL && i < PO_STATE_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *s = (po_state_t)i;
            return 0;
        }
    }
    return -1;
}

int po_transition(po_state_t from, po_event_t ev, po_state_t *to)
{
    po_state_t next;

    switch (ev) {
    case PO_EV_CALLED:
        if (from != PO_PENDING)
            return -1;
        next = PO_REQUESTED;
        break;
    case PO_EV_CALL_FAILED:
        if (from != PO_PENDING)
            return -1;
        next = PO_PENDING;
        break;
    case PO_EV_TAKEN_OVER:
        if (from != PO_REQUESTED)
            return -1;
        next = PO_PENDING;
        break;
    case PO_EV_GIVEN_UP:
        if (from != PO_PENDING)
            return -1;
        next = PO_FAILED;
        break;
    case PO_EV_REOPENED:
        if (from != PO_FAILED)
            return -1;
        next = PO_PENDING;
        break;
    case PO_EV_DELIVERED:
        /* A late delivery is still accepted after a take-over or a give-up; once only. */
        if (from == PO_DELIVERED || (unsigned)from >= PO_STATE_COUNT)
            return -1;
        next = PO_DELIVERED;
        break;
    default:
        return -1;
    }
    *to = next;
    return 0;
}
