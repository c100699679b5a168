/* test_factory_order_state: the production order's state machine
 * (services/factory/order_state.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "factory.h"

static void test_names(void **state)
{
    po_state_t s;

    (void)state;
    for (int i = 0; i < PO_STATE_COUNT; i++) {
        assert_non_null(po_state_name((po_state_t)i));
        assert_int_equal(po_state_parse(po_state_name((po_state_t)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_string_equal(po_state_name(PO_PENDING), "pending");
    assert_string_equal(po_state_name(PO_REQUESTED), "requested");
    assert_string_equal(po_state_name(PO_DELIVERED), "delivered");
    assert_string_equal(po_state_name(PO_FAILED), "failed");
    assert_null(po_state_name(PO_STATE_COUNT));
    assert_int_equal(po_state_parse("shipped", &s), -1);
    assert_int_equal(po_state_parse("", &s), -1);
    assert_int_equal(po_state_parse(NULL, &s), -1);
}

/* from --ev--> want, or want -1: not allowed. */
static void expect(po_state_t from, po_event_t ev, int want)
{
    po_state_t to = PO_STATE_COUNT;
    int rc = po_transition(from, ev, &to);

    if (want < 0) {
        assert_int_equal(rc, -1);
        assert_int_equal(to, PO_STATE_COUNT); /* unchanged */
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(to, want);
    }
}

static void test_transitions(void **state)
{
    (void)state;
    expect(PO_PENDING, PO_EV_CALLED, PO_REQUESTED);
    expect(PO_PENDING, PO_EV_CALL_FAILED, PO_PENDING);
    expect(PO_PENDING, PO_EV_GIVEN_UP, PO_FAILED);
    expect(PO_PENDING, PO_EV_DELIVERED, PO_DELIVERED);
    expect(PO_PENDING, PO_EV_TAKEN_OVER, -1);
    expect(PO_PENDING, PO_EV_REOPENED, -1);

    expect(PO_REQUESTED, PO_EV_TAKEN_OVER, PO_PENDING);
    expect(PO_REQUESTED, PO_EV_DELIVERED, PO_DELIVERED);
    expect(PO_REQUESTED, PO_EV_CALLED, -1);
    expect(PO_REQUESTED, PO_EV_CALL_FAILED, -1);
    expect(PO_REQUESTED, PO_EV_GIVEN_UP, -1);
    expect(PO_REQUESTED, PO_EV_REOPENED, -1);

    expect(PO_FAILED, PO_EV_REOPENED, PO_PENDING);
    expect(PO_FAILED, PO_EV_DELIVERED, PO_DELIVERED); /* a late delivery still counts */
    expect(PO_FAILED, PO_EV_CALLED, -1);
    expect(PO_FAILED, PO_EV_GIVEN_UP, -1);

    /* Delivered is final: a second delivery is a repeat. */
    for (int ev = PO_EV_CALLED; ev <= PO_EV_DELIVERED; ev++)
        expect(PO_DELIVERED, (po_event_t)ev, -1);
    expect(PO_STATE_COUNT, PO_EV_DELIVERED, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_transitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
