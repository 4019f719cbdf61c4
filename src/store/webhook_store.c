/*
 * webhook_store: see webhook_store.h.
 */
#include "store/webhook_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/i64.h"
#include "store/pgutil.h"

/* clang-format off */
static const char sql_insert[] =
    "INSERT INTO gateway_notification (gateway, event_code, psp_reference, original_reference,"
    "  merchant_reference, merchant_account, amount, currency, success, reason, event_date,"
    "  raw_item, request_id)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8, $9::boolean, $10, $11, $12::jsonb, $13)"
    " ON CONFLICT (gateway, event_code, psp_reference, success) DO NOTHING"
    " RETURNING id";

/* Rule 1 (our reference) first, then up to two open requests of rule 2:
 * two mean the notification cannot say which one it is about. */
static const char sql_match[] =
    "(SELECT request_id, 1 FROM cancel_request"
    "  WHERE request_id = $1 AND gateway = $2 AND payment_key = $3"
    "    AND amount = $4::bigint AND currency = $5)"
    " UNION ALL"
    " (SELECT request_id, 2 FROM cancel_request"
    "  WHERE payment_key = $3 AND gateway = $2 AND amount = $4::bigint AND currency = $5"
    "    AND status IN ('SCHEDULED', 'IN_FLIGHT', 'PENDING')"
    "  ORDER BY request_id LIMIT 2)";

static const char sql_facts[] =
    "SELECT event_code, success, psp_reference, coalesce(reason, '')"
    "  FROM gateway_notification"
    " WHERE request_id = $1 AND gateway = $2"
    " ORDER BY id";
/* clang-format on */

const char *webhook_refund_result_name(enum webhook_refund_result r)
{
    switch (r) {
    case WEBHOOK_NONE:
        return "NONE";
    case WEBHOOK_REFUNDED:
        return "REFUNDED";
    case WEBHOOK_REFUSED:
        return "REFUSED";
    case WEBHOOK_FAILED_AFTER:
        return "FAILED_AFTER";
    case WEBHOOK_REVERSED:
        return "REVERSED";
    }
    return "?";
}

enum webhook_refund_result webhook_refund_decide(const struct webhook_fact *facts, size_t n,
                                                 size_t *deciding)
{
    /* From the strongest statement about where the money is to the weakest;
     * the first kind present decides. */
    static const struct {
        const char *event_code;
        int success; /* 1 "true", 0 "false", -1 either */
        enum webhook_refund_result result;
    } order[] = {
        {"REFUNDED_REVERSED", -1, WEBHOOK_REVERSED},
        {"REFUND_FAILED", -1, WEBHOOK_FAILED_AFTER},
        {"REFUND", 1, WEBHOOK_REFUNDED},
        {"REFUND", 0, WEBHOOK_REFUSED},
    };

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (size_t i = 0; i < n; i++) {
            if (facts[i].event_code == NULL ||
                strcmp(facts[i].event_code, order[k].event_code) != 0 ||
                (order[k].success >= 0 && facts[i].success != (order[k].success == 1)))
                continue;
            if (deciding != NULL)
                *deciding = i;
            return order[k].result;
        }
    }
    if (deciding != NULL)
        *deciding = n;
    return WEBHOOK_NONE;
}

bool webhook_store_refund_result(struct db *db, const char *gateway, const char *request_id,
                                 enum webhook_refund_result *out, char *detail, size_t detaillen,
                                 char *err, size_t errlen)
{
    const char *values[2] = {request_id, gateway};

    *out = WEBHOOK_NONE;
    if (detaillen > 0)
        detail[0] = '\0';
    PGresult *res = pgutil_query(db, sql_facts, 2, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the request's gateway notifications", err, errlen);
    if (res == NULL)
        return false;
    size_t n = (size_t)PQntuples(res), deciding = 0;
    struct webhook_fact *facts = calloc(n > 0 ? n : 1, sizeof(*facts));
    if (facts == NULL) {
        PQclear(res);
        snprintf(err, errlen, "could not read the request's gateway notifications: out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        facts[i].event_code = PQgetvalue(res, (int)i, 0);
        facts[i].success = PQgetvalue(res, (int)i, 1)[0] == 't';
    }
    *out = webhook_refund_decide(facts, n, &deciding);
    if (deciding < n && detaillen > 0) {
        int r = (int)deciding;
        const char *reason = PQgetvalue(res, r, 3);
        snprintf(detail, detaillen, "webhook %s success=%s pspReference=%s%s%s",
                 PQgetvalue(res, r, 0), facts[deciding].success ? "true" : "false",
                 PQgetvalue(res, r, 2), reason[0] != '\0' ? " reason=" : "", reason);
    }
    free(facts);
    PQclear(res);
    return true;
}

bool webhook_store_insert(struct db *db, const struct webhook_notification *n, bool *inserted,
                          char *err, size_t errlen)
{
    char amount[I64_LEN];
    const char *values[13] = {
        n->gateway,
        n->event_code,
        n->psp_reference,
        n->original_reference,
        n->merchant_reference,
        n->merchant_account,
        n->has_amount ? I64(amount, n->amount) : NULL,
        n->currency,
        n->success ? "true" : "false",
        n->reason,
        n->event_date,
        n->raw_item,
        n->request_id,
    };
    PGresult *res = pgutil_query(db, sql_insert, 13, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not store the gateway notification", err, errlen);
    if (res == NULL)
        return false;
    *inserted = PQntuples(res) == 1;
    PQclear(res);
    return true;
}

bool webhook_store_match(struct db *db, const struct webhook_notification *n, char *request_id,
                         size_t idlen, bool *found, char *err, size_t errlen)
{
    char amount[I64_LEN];

    *found = false;
    if (idlen > 0)
        request_id[0] = '\0';
    /* Without the payment, the amount or the currency nothing can be told
     * apart safely. */
    if (n->original_reference == NULL || !n->has_amount || n->currency == NULL)
        return true;
    const char *values[5] = {n->merchant_reference, n->gateway, n->original_reference,
                             I64(amount, n->amount), n->currency};
    PGresult *res =
        pgutil_query(db, sql_match, 5, values, NULL, NULL, PGRES_TUPLES_OK,
                     "could not match the gateway notification to a request", err, errlen);
    if (res == NULL)
        return false;
    int rows = PQntuples(res), by_reference = -1, open = 0, one_open = -1;
    for (int r = 0; r < rows; r++) {
        if (strcmp(PQgetvalue(res, r, 1), "1") == 0) {
            by_reference = r;
        } else {
            open++;
            one_open = r;
        }
    }
    int pick = by_reference >= 0 ? by_reference : open == 1 ? one_open : -1;
    if (pick >= 0) {
        snprintf(request_id, idlen, "%s", PQgetvalue(res, pick, 0));
        *found = true;
    }
    PQclear(res);
    return true;
}
