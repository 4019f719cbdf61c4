/*
 * Unit tests of the relay's pure decisions: what becomes of an outbox row
 * after its produce or delivery (relay_verdict_of), and when the holder of
 * the relay lease may publish and must renew (relay_lease.h).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "relay/relay.h"
#include "relay/relay_lease.h"

struct verdict_case {
    rd_kafka_resp_err_t err;
    bool alone;
    enum relay_verdict want;
};

ParameterizedTestParameters(relay, verdict)
{
    static struct verdict_case cases[] = {
        {RD_KAFKA_RESP_ERR_NO_ERROR, false, RELAY_PUBLISHED},
        /* Transient: the broker will take it later, as it is. */
        {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, false, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, true, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR__TRANSPORT, false, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, true, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, false, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, false, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR__QUEUE_FULL, true, RELAY_RETRY},
        /* Fatal for the producer, not for the row: recreated, retried. */
        {RD_KAFKA_RESP_ERR__FATAL, false, RELAY_RETRY},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, true, RELAY_RETRY},
        /* Permanent: parked when it is known to be this message's own. */
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, true, RELAY_PARK},
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, false, RELAY_SEND_ALONE},
        {RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, false, RELAY_SEND_ALONE},
        {RD_KAFKA_RESP_ERR_INVALID_RECORD, true, RELAY_PARK},
        {RD_KAFKA_RESP_ERR__INVALID_ARG, true, RELAY_PARK},
        /* A topic that looks unknown is looked up before anything else. */
        {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, true, RELAY_CHECK_TOPIC},
        {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, false, RELAY_CHECK_TOPIC},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, false, RELAY_CHECK_TOPIC},
        {RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, true, RELAY_CHECK_TOPIC},
    };
    return cr_make_param_array(struct verdict_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct verdict_case *c, relay, verdict)
{
    enum relay_verdict got = relay_verdict_of(c->err, c->alone);
    cr_expect_eq(got, c->want, "%s (%s): %s, want %s", rd_kafka_err2name(c->err),
                 c->alone ? "alone" : "with others", relay_verdict_name(got),
                 relay_verdict_name(c->want));
}

Test(relay_lease, not_held_is_never_valid)
{
    struct relay_lease l;
    relay_lease_init(&l, "relay-a", 10000);
    cr_expect_not(relay_lease_valid(&l, 0));
    cr_expect_not(relay_lease_valid(&l, 123456));
    cr_expect_not(relay_lease_renew_due(&l, 123456));
}

/* Renewed at t: renew a third of the lease later, stop publishing a fifth
 * of the lease before it can end (it ends lease after the database's now(),
 * which is later than t). */
Test(relay_lease, valid_until_before_the_lease_ends)
{
    struct relay_lease l;
    relay_lease_init(&l, "relay-a", 10000);
    l.epoch = 7;
    relay_lease_renewed(&l, 50000);
    cr_expect(relay_lease_valid(&l, 50000));
    cr_expect_not(relay_lease_renew_due(&l, 53332));
    cr_expect(relay_lease_renew_due(&l, 53333));
    cr_expect(relay_lease_valid(&l, 57999));
    cr_expect_not(relay_lease_valid(&l, 58000), "publishing must stop before the lease's end");
    cr_expect_not(relay_lease_valid(&l, 60000));
}

/* A relay frozen (SIGSTOP) for longer than the lease wakes with its lease
 * invalid: the monotonic clock ran on while it was stopped. */
Test(relay_lease, frozen_past_the_lease_wakes_invalid)
{
    struct relay_lease l;
    relay_lease_init(&l, "relay-a", 10000);
    l.epoch = 3;
    relay_lease_renewed(&l, 1000);
    cr_expect_not(relay_lease_valid(&l, 1000 + 30000));
    cr_expect(relay_lease_renew_due(&l, 1000 + 30000));
}

Test(relay_lease, drop_forgets_the_token)
{
    struct relay_lease l;
    relay_lease_init(&l, "relay-a", 10000);
    l.epoch = 9;
    relay_lease_renewed(&l, 0);
    relay_lease_drop(&l);
    cr_expect_eq(l.epoch, 0);
    cr_expect_not(relay_lease_valid(&l, 1));
    cr_expect_str_eq(l.holder, "relay-a");
}
