/*
 * adyen_notification: see adyen_notification.h.
 */
#include "webhook/adyen_notification.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void adyen_delivery_clear(struct adyen_delivery *d)
{
    for (size_t i = 0; d->items != NULL && i < d->nitems; i++) {
        struct adyen_item *it = &d->items[i];
        free(it->psp_reference);
        free(it->original_reference);
        free(it->merchant_account_code);
        free(it->merchant_reference);
        free(it->currency);
        free(it->event_code);
        free(it->reason);
        free(it->event_date);
        free(it->hmac_signature);
        free(it->raw);
    }
    free(d->items);
    d->items = NULL;
    d->nitems = 0;
}

/* obj[key] as a copied string into *out (NULL when absent or null). False
 * with err when it is another type, too long or holds a NUL. */
static bool take_string(const json_t *obj, const char *key, const char *where, char **out,
                        char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s.%s is not a string", where, key);
        return false;
    }
    size_t len = json_string_length(v);
    if (len > ADYEN_FIELD_MAX || memchr(json_string_value(v), '\0', len) != NULL) {
        snprintf(err, errlen, "%s.%s is longer than %d bytes or holds a NUL", where, key,
                 ADYEN_FIELD_MAX);
        return false;
    }
    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

static bool parse_amount(const json_t *obj, const char *where, struct adyen_item *it, char *err,
                         size_t errlen)
{
    const json_t *amount = json_object_get(obj, "amount");
    char at[96];

    if (amount == NULL || json_is_null(amount))
        return true;
    snprintf(at, sizeof(at), "%s.amount", where);
    if (!json_is_object(amount)) {
        snprintf(err, errlen, "%s is not an object", at);
        return false;
    }
    const json_t *value = json_object_get(amount, "value");
    /* An integer only: the signature signs the integer's decimal text, and a
     * fraction of a minor unit is no amount. */
    if (!json_is_integer(value)) {
        snprintf(err, errlen, "%s.value is missing or not an integer", at);
        return false;
    }
    it->has_amount = true;
    it->value = (int64_t)json_integer_value(value);
    snprintf(it->value_text, sizeof(it->value_text), "%" PRId64, it->value);
    return take_string(amount, "currency", at, &it->currency, err, errlen);
}

/* success is the string "true" or "false", as Adyen sends and signs it;
 * anything else (a JSON boolean included) has no agreed signing text. */
static bool parse_success(const json_t *obj, const char *where, bool *success, char *err,
                          size_t errlen)
{
    const json_t *v = json_object_get(obj, "success");

    if (json_is_string(v) &&
        (strcmp(json_string_value(v), "true") == 0 || strcmp(json_string_value(v), "false") == 0)) {
        *success = strcmp(json_string_value(v), "true") == 0;
        return true;
    }
    snprintf(err, errlen, "%s.success is missing or not \"true\"/\"false\"", where);
    return false;
}

static bool parse_item(const json_t *wrapper, size_t index, struct adyen_item *it, char *err,
                       size_t errlen)
{
    char where[64];
    snprintf(where, sizeof(where), "notificationItems[%zu]", index);
    const json_t *obj =
        json_is_object(wrapper) ? json_object_get(wrapper, "NotificationRequestItem") : NULL;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "%s has no NotificationRequestItem object", where);
        return false;
    }
    snprintf(where, sizeof(where), "notificationItems[%zu].NotificationRequestItem", index);
    const json_t *extra = json_object_get(obj, "additionalData");
    if (extra != NULL && !json_is_null(extra) && !json_is_object(extra)) {
        snprintf(err, errlen, "%s.additionalData is not an object", where);
        return false;
    }
    if (!take_string(obj, "pspReference", where, &it->psp_reference, err, errlen) ||
        !take_string(obj, "originalReference", where, &it->original_reference, err, errlen) ||
        !take_string(obj, "merchantAccountCode", where, &it->merchant_account_code, err, errlen) ||
        !take_string(obj, "merchantReference", where, &it->merchant_reference, err, errlen) ||
        !take_string(obj, "eventCode", where, &it->event_code, err, errlen) ||
        !take_string(obj, "reason", where, &it->reason, err, errlen) ||
        !take_string(obj, "eventDate", where, &it->event_date, err, errlen) ||
        (json_is_object(extra) && !take_string(extra, "hmacSignature", "additionalData",
                                               &it->hmac_signature, err, errlen)) ||
        !parse_amount(obj, where, it, err, errlen) ||
        !parse_success(obj, where, &it->success, err, errlen))
        return false;
    if (it->psp_reference == NULL || it->psp_reference[0] == '\0' || it->event_code == NULL ||
        it->event_code[0] == '\0') {
        snprintf(err, errlen, "%s has no pspReference or no eventCode", where);
        return false;
    }
    it->raw = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (it->raw == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

bool adyen_delivery_parse(const char *body, size_t len, struct adyen_delivery *d, char *err,
                          size_t errlen)
{
    json_error_t jerr;
    bool ok = false;

    memset(d, 0, sizeof(*d));
    /* REJECT_DUPLICATES: two values for one key would let a signature be
     * checked on one and the other stored. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "the body is not JSON: %s at line %d", jerr.text, jerr.line);
        return false;
    }
    const json_t *items = json_is_object(root) ? json_object_get(root, "notificationItems") : NULL;
    if (!json_is_array(items) || json_array_size(items) == 0) {
        snprintf(err, errlen, "the body has no notificationItems array with items");
        goto out;
    }
    if (json_array_size(items) > ADYEN_MAX_ITEMS) {
        snprintf(err, errlen, "%zu notificationItems: at most %d are accepted",
                 json_array_size(items), ADYEN_MAX_ITEMS);
        goto out;
    }
    d->items = calloc(json_array_size(items), sizeof(*d->items));
    if (d->items == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        d->nitems = i + 1;
        if (!parse_item(json_array_get(items, i), i, &d->items[i], err, errlen))
            goto out;
    }
    ok = true;
out:
    json_decref(root);
    if (!ok)
        adyen_delivery_clear(d);
    return ok;
}

void adyen_item_hmac_fields(const struct adyen_item *item, struct adyen_hmac_fields *f)
{
    f->psp_reference = item->psp_reference;
    f->original_reference = item->original_reference;
    f->merchant_account_code = item->merchant_account_code;
    f->merchant_reference = item->merchant_reference;
    f->value = item->has_amount ? item->value_text : NULL;
    f->currency = item->currency;
    f->event_code = item->event_code;
    f->success = item->success ? "true" : "false";
}

bool adyen_event_is_refund(const char *event_code)
{
    return event_code != NULL &&
           (strcmp(event_code, "REFUND") == 0 || strcmp(event_code, "REFUND_FAILED") == 0 ||
            strcmp(event_code, "REFUNDED_REVERSED") == 0);
}
