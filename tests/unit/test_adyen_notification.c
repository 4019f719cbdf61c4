/*
 * adyen_notification: a delivery's body -> its items, and everything a
 * sender could put there instead refused with a reason.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/adyen_notification.h"

#define ITEM(fields) "{\"NotificationRequestItem\":{" fields "}}"
#define REFUND_FIELDS                                                                              \
    "\"pspReference\":\"RF00000000000001\",\"originalReference\":\"PY00000000000001\","            \
    "\"merchantAccountCode\":\"Shop\",\"merchantReference\":\"r-1\","                              \
    "\"amount\":{\"value\":2500,\"currency\":\"EUR\"},\"eventCode\":\"REFUND\","                   \
    "\"success\":\"true\",\"eventDate\":\"2026-12-01T10:00:00+01:00\","                            \
    "\"additionalData\":{\"hmacSignature\":\"c2ln\"}"
#define DELIVERY(items) "{\"live\":\"false\",\"notificationItems\":[" items "]}"

static bool parse(const char *body, struct adyen_delivery *d, char *err, size_t errlen)
{
    return adyen_delivery_parse(body, strlen(body), d, err, errlen);
}

Test(adyen_notification, a_refund_item_in_full)
{
    struct adyen_delivery d;
    char err[256];
    cr_assert(parse(DELIVERY(ITEM(REFUND_FIELDS ",\"reason\":\"\"")), &d, err, sizeof(err)), "%s",
              err);
    cr_assert_eq(d.nitems, 1);
    const struct adyen_item *it = &d.items[0];
    cr_expect_str_eq(it->psp_reference, "RF00000000000001");
    cr_expect_str_eq(it->original_reference, "PY00000000000001");
    cr_expect_str_eq(it->merchant_account_code, "Shop");
    cr_expect_str_eq(it->merchant_reference, "r-1");
    cr_expect(it->has_amount);
    cr_expect_eq(it->value, 2500);
    cr_expect_str_eq(it->value_text, "2500");
    cr_expect_str_eq(it->currency, "EUR");
    cr_expect_str_eq(it->event_code, "REFUND");
    cr_expect(it->success);
    cr_expect_str_eq(it->event_date, "2026-12-01T10:00:00+01:00");
    cr_expect_str_eq(it->hmac_signature, "c2ln");
    cr_expect_str_eq(it->reason, "");
    cr_expect_not_null(strstr(it->raw, "\"pspReference\":\"RF00000000000001\""), "%s", it->raw);

    struct adyen_hmac_fields f;
    adyen_item_hmac_fields(it, &f);
    char *s = adyen_hmac_signing_string(&f);
    cr_expect_str_eq(s, "RF00000000000001:PY00000000000001:Shop:r-1:2500:EUR:REFUND:true");
    free(s);
    adyen_delivery_clear(&d);
    cr_expect_null(d.items);
}

Test(adyen_notification, absent_optional_fields_sign_as_empty)
{
    struct adyen_delivery d;
    char err[256];
    cr_assert(parse(DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND_FAILED\","
                                  "\"success\":\"false\"")),
                    &d, err, sizeof(err)),
              "%s", err);
    cr_expect_not(d.items[0].has_amount);
    cr_expect_not(d.items[0].success);
    cr_expect_null(d.items[0].hmac_signature);
    struct adyen_hmac_fields f;
    adyen_item_hmac_fields(&d.items[0], &f);
    char *s = adyen_hmac_signing_string(&f);
    cr_expect_str_eq(s, "P::::::REFUND_FAILED:false");
    free(s);
    adyen_delivery_clear(&d);
}

Test(adyen_notification, several_items_in_order)
{
    struct adyen_delivery d;
    char err[256];
    cr_assert(parse(DELIVERY(ITEM("\"pspReference\":\"A\",\"eventCode\":\"REFUND\",\"success\":"
                                  "\"true\"") "," ITEM("\"pspReference\":\"B\",\"eventCode\":"
                                                       "\"AUTHORISATION\",\"success\":\"false\"")),
                    &d, err, sizeof(err)),
              "%s", err);
    cr_assert_eq(d.nitems, 2);
    cr_expect_str_eq(d.items[0].psp_reference, "A");
    cr_expect_str_eq(d.items[1].psp_reference, "B");
    cr_expect(adyen_event_is_refund(d.items[0].event_code));
    cr_expect_not(adyen_event_is_refund(d.items[1].event_code));
    adyen_delivery_clear(&d);
}

/* Arrays, not pointers: Criterion runs each parameter in a new process. */
struct hostile {
    char name[40];
    char body[400];
    char why[80]; /* a part of the error */
};

static struct hostile hostile_bodies[] = {
    {"not JSON", "<xml/>", "not JSON"},
    {"empty", "", "not JSON"},
    {"truncated", DELIVERY(ITEM(REFUND_FIELDS)) "garbage", "not JSON"},
    {"a list", "[1,2]", "no notificationItems"},
    {"no items", "{\"live\":\"false\"}", "no notificationItems"},
    {"empty items", DELIVERY(""), "no notificationItems"},
    {"items not a list", "{\"notificationItems\":{}}", "no notificationItems"},
    {"item not wrapped", "{\"notificationItems\":[{\"pspReference\":\"P\"}]}",
     "no NotificationRequestItem"},
    {"item a string", "{\"notificationItems\":[\"x\"]}", "no NotificationRequestItem"},
    {"no pspReference", DELIVERY(ITEM("\"eventCode\":\"REFUND\",\"success\":\"true\"")),
     "no pspReference"},
    {"no eventCode", DELIVERY(ITEM("\"pspReference\":\"P\",\"success\":\"true\"")),
     "no pspReference or no eventCode"},
    {"no success", DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\"")), "success"},
    {"success a boolean",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":true")), "success"},
    {"success yes",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"yes\"")),
     "success"},
    {"pspReference a number",
     DELIVERY(ITEM("\"pspReference\":7,\"eventCode\":\"REFUND\",\"success\":\"true\"")),
     "pspReference is not a string"},
    {"amount a string",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"amount\":\"2500\"")),
     "amount is not an object"},
    {"amount value a fraction",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"amount\":{\"value\":25.5,\"currency\":\"EUR\"}")),
     "value is missing or not an integer"},
    {"amount value missing",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"amount\":{\"currency\":\"EUR\"}")),
     "value is missing"},
    {"currency a number",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"amount\":{\"value\":1,\"currency\":978}")),
     "currency is not a string"},
    {"additionalData a list",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"additionalData\":[]")),
     "additionalData is not an object"},
    {"signature a number",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":\"true\","
                   "\"additionalData\":{\"hmacSignature\":1}")),
     "hmacSignature is not a string"},
    {"duplicate key",
     DELIVERY(ITEM("\"pspReference\":\"P\",\"pspReference\":\"Q\",\"eventCode\":\"REFUND\","
                   "\"success\":\"true\"")),
     "not JSON"},
    {"NUL in a value",
     DELIVERY(ITEM("\"pspReference\":\"P\\u0000Q\",\"eventCode\":\"REFUND\",\"success\":\"true\"")),
     "not JSON"},
};

ParameterizedTestParameters(adyen_notification, hostile_bodies_are_refused)
{
    return cr_make_param_array(struct hostile, hostile_bodies,
                               sizeof(hostile_bodies) / sizeof(hostile_bodies[0]));
}

ParameterizedTest(struct hostile *h, adyen_notification, hostile_bodies_are_refused)
{
    struct adyen_delivery d;
    char err[256] = "";
    cr_expect_not(parse(h->body, &d, err, sizeof(err)), "%s was accepted", h->name);
    cr_expect_not_null(strstr(err, h->why), "%s: \"%s\" does not say \"%s\"", h->name, err, h->why);
    cr_expect_null(d.items, "%s", h->name);
    cr_expect_eq(d.nitems, 0, "%s", h->name);
}

/* Many items: the limit holds, and one more than it is refused before any
 * item is read. */
static char *delivery_of(size_t n)
{
    static const char item[] = ITEM("\"pspReference\":\"P\",\"eventCode\":\"REFUND\",\"success\":"
                                    "\"true\"");
    char *body = malloc(64 + n * sizeof(item));
    cr_assert_not_null(body);
    size_t o = (size_t)sprintf(body, "{\"notificationItems\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(body + o, "%s%s", i > 0 ? "," : "", item);
    sprintf(body + o, "]}");
    return body;
}

Test(adyen_notification, at_most_the_item_limit)
{
    struct adyen_delivery d;
    char err[256];
    char *body = delivery_of(ADYEN_MAX_ITEMS);
    cr_expect(parse(body, &d, err, sizeof(err)), "%s", err);
    cr_expect_eq(d.nitems, ADYEN_MAX_ITEMS);
    adyen_delivery_clear(&d);
    free(body);
    body = delivery_of(100000);
    cr_expect_not(parse(body, &d, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "100000 notificationItems: at most 100"), "%s", err);
    free(body);
}

Test(adyen_notification, a_field_past_the_limit_is_refused)
{
    char *big = malloc(ADYEN_FIELD_MAX + 200);
    cr_assert_not_null(big);
    int o = sprintf(big, "{\"notificationItems\":[{\"NotificationRequestItem\":{\"eventCode\":"
                         "\"REFUND\",\"success\":\"true\",\"pspReference\":\"");
    memset(big + o, 'P', ADYEN_FIELD_MAX + 1);
    strcpy(big + o + ADYEN_FIELD_MAX + 1, "\"}}]}");
    struct adyen_delivery d;
    char err[256];
    cr_expect_not(adyen_delivery_parse(big, strlen(big), &d, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "longer than 1024 bytes"), "%s", err);
    free(big);
}

Test(adyen_notification, the_body_need_not_end_in_nul)
{
    static const char body[] = DELIVERY(ITEM(REFUND_FIELDS)) "XYZ";
    struct adyen_delivery d;
    char err[256];
    cr_expect(adyen_delivery_parse(body, sizeof(body) - 1 - 3, &d, err, sizeof(err)), "%s", err);
    adyen_delivery_clear(&d);
}
