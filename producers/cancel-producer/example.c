/*
 * cancel-producer-example: how an upstream C service reports a failed
 * cancel. Usage: cancel-producer-example BROKERS REQUEST_ID PAYMENT_KEY AMOUNT
 */
#include <stdio.h>
#include <stdlib.h>

#include "cancel_producer.h"

int main(int argc, char **argv)
{
    char err[512], id[CANCEL_PRODUCER_EVENT_ID_LEN];

    if (argc != 5) {
        fprintf(stderr, "usage: %s BROKERS REQUEST_ID PAYMENT_KEY AMOUNT\n", argv[0]);
        return 2;
    }
    struct cancel_producer *p =
        cancel_producer_new(argv[1], "payments.cancel.failed", NULL, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct cancel_failed_event ev = CANCEL_FAILED_EVENT_INIT;
    ev.request_id = argv[2];
    ev.gateway = "toss";
    ev.payment_key = argv[3];
    ev.amount = strtoll(argv[4], NULL, 10);
    ev.currency = "KRW";
    ev.reason = "customer cancelled the booking";
    ev.failure_code = "GATEWAY_TIMEOUT";
    ev.failure_message = "the refund call timed out";
    bool ok = cancel_producer_publish(p, &ev, 10000, id, err, sizeof(err));
    if (ok)
        printf("published event %s for request %s\n", id, ev.request_id);
    else
        fprintf(stderr, "%s\n", err);
    cancel_producer_free(p);
    return ok ? 0 : 1;
}
