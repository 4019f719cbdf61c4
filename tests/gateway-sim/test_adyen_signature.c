/*
 * Unit test of adyen_signature: the signing string and the signature of Adyen
 * notification items, against the three test vectors of Adyen's own library
 * (docs/design/issue9-gateways-research.md §3.7).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "adyen_signature.h"

struct vector {
    const char *key;
    const char *psp;
    const char *merchant_reference;
    long value;
    const char *signing_string;
    const char *signature;
};

static const struct vector vectors[] = {
    {"44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056", "7914073381342284",
     "TestPayment-1407325143704", 1130,
     "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true",
     "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    /* A ':' in a value is not escaped. */
    {"74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174", "M8NB66SBZSGLNK82",
     ":slashes are fun", 1000,
     "M8NB66SBZSGLNK82::AntoniStroinski::slashes are fun:1000:EUR:AUTHORISATION:true",
     "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA="},
    /* Nor is a backslash (two of them here). */
    {"74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174", "T7FD4VM4D3RZNN82",
     "\\\\slashes are fun", 1000,
     "T7FD4VM4D3RZNN82::AntoniStroinski:\\\\slashes are fun:1000:EUR:AUTHORISATION:true",
     "nIgT81gaB5oJpn2jPXupDq68iRo2wUlBsuYjtYfwKqo="},
};

/* The NotificationRequestItem of vector v (originalReference absent). */
static json_t *item_of(const struct vector *v)
{
    const char *merchant = v->value == 1130 ? "TestMerchant" : "AntoniStroinski";
    return json_pack("{s:s, s:s, s:s, s:{s:I, s:s}, s:s, s:s, s:s}", "pspReference", v->psp,
                     "merchantAccountCode", merchant, "merchantReference", v->merchant_reference,
                     "amount", "value", (json_int_t)v->value, "currency", "EUR", "eventCode",
                     "AUTHORISATION", "success", "true", "eventDate", "2014-08-06T13:39:03+02:00");
}

/* By index: Criterion may run a test in a new image of the binary, where
 * pointers into the old one mean nothing. */
ParameterizedTestParameters(adyen_signature, adyen_vectors)
{
    static int indexes[] = {0, 1, 2};
    return cr_make_param_array(int, indexes, sizeof(indexes) / sizeof(indexes[0]));
}

ParameterizedTest(int *index, adyen_signature, adyen_vectors)
{
    const struct vector *v = &vectors[*index];
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];
    char sig[ADYEN_SIGNATURE_SIZE];
    json_t *item = item_of(v);

    cr_assert(adyen_signature_key_parse(v->key, key));
    char *s = adyen_signature_string(item);
    cr_assert_str_eq(s, v->signing_string);
    free(s);
    cr_assert(adyen_signature_of_item(item, key, sig));
    cr_expect_str_eq(sig, v->signature);
    json_decref(item);
}

Test(adyen_signature, lower_case_key_is_the_same_key)
{
    unsigned char upper[ADYEN_SIGNATURE_KEY_LEN], lower[ADYEN_SIGNATURE_KEY_LEN];

    cr_assert(adyen_signature_key_parse(vectors[0].key, upper));
    cr_assert(adyen_signature_key_parse(
        "44782def547aaa06c910c43932b1eb0c71fc68d9d0c057550c48ec2acf6ba056", lower));
    cr_expect_arr_eq(upper, lower, sizeof(upper));
}

Test(adyen_signature, key_must_be_64_hex_digits)
{
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];

    cr_expect_not(adyen_signature_key_parse("", key));
    cr_expect_not(adyen_signature_key_parse("44782DEF", key));
    cr_expect_not(adyen_signature_key_parse(
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA05", key));
    cr_expect_not(adyen_signature_key_parse(
        "G4782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056", key));
    cr_expect_not(adyen_signature_key_parse(NULL, key));
}

Test(adyen_signature, absent_fields_sign_as_empty_strings)
{
    json_t *item = json_pack("{s:s}", "pspReference", "P");
    char *s = adyen_signature_string(item);

    cr_expect_str_eq(s, "P:::::::");
    free(s);
    json_decref(item);
}
