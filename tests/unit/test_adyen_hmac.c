/*
 * adyen_hmac: the signature of research §3.7, checked against Adyen's own
 * test vectors (Adyen/adyen-python-api-library test/UtilTest.py).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "webhook/adyen_hmac.h"

#define KEY_1 "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
#define KEY_2 "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174"

/* Arrays, not pointers: Criterion runs each parameter in a new process. */
struct vector {
    char key[65];
    char field[8][40]; /* the signed fields; "-" is an absent one */
    char signing_string[128];
    char signature[ADYEN_HMAC_SIG_SIZE];
};

static struct adyen_hmac_fields fields_of(struct vector *v)
{
    const char *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = strcmp(v->field[i], "-") == 0 ? NULL : v->field[i];
    return (struct adyen_hmac_fields){p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]};
}

static struct vector vectors[] = {
    {KEY_1,
     {"7914073381342284", "-", "TestMerchant", "TestPayment-1407325143704", "1130", "EUR",
      "AUTHORISATION", "true"},
     "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true",
     "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    /* A ':' inside a field is signed as it is, not escaped. */
    {KEY_2,
     {"M8NB66SBZSGLNK82", "-", "AntoniStroinski", ":slashes are fun", "1000", "EUR",
      "AUTHORISATION", "true"},
     "M8NB66SBZSGLNK82::AntoniStroinski::slashes are fun:1000:EUR:AUTHORISATION:true",
     "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA="},
    /* Nor are backslashes (two of them here). */
    {KEY_2,
     {"T7FD4VM4D3RZNN82", "", "AntoniStroinski", "\\\\slashes are fun", "1000", "EUR",
      "AUTHORISATION", "true"},
     "T7FD4VM4D3RZNN82::AntoniStroinski:\\\\slashes are fun:1000:EUR:AUTHORISATION:true",
     "nIgT81gaB5oJpn2jPXupDq68iRo2wUlBsuYjtYfwKqo="},
};

ParameterizedTestParameters(adyen_hmac, adyen_test_vectors)
{
    return cr_make_param_array(struct vector, vectors, sizeof(vectors) / sizeof(vectors[0]));
}

ParameterizedTest(struct vector *v, adyen_hmac, adyen_test_vectors)
{
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    char sig[ADYEN_HMAC_SIG_SIZE];
    const struct adyen_hmac_fields f = fields_of(v);

    char *s = adyen_hmac_signing_string(&f);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, v->signing_string);
    free(s);
    cr_assert(adyen_hmac_key_decode(v->key, key));
    cr_assert(adyen_hmac_sign(key, &f, sig));
    cr_expect_str_eq(sig, v->signature);
    cr_expect(adyen_hmac_verify(key, &f, v->signature));
}

Test(adyen_hmac, wrong_key_does_not_verify)
{
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    cr_assert(adyen_hmac_key_decode(KEY_2, key));
    const struct adyen_hmac_fields f = fields_of(&vectors[0]);
    cr_expect_not(adyen_hmac_verify(key, &f, vectors[0].signature));
    /* A key of the same length that differs in one bit. */
    cr_assert(adyen_hmac_key_decode(KEY_1, key));
    key[31] ^= 1;
    cr_expect_not(adyen_hmac_verify(key, &f, vectors[0].signature));
}

Test(adyen_hmac, any_tampered_field_does_not_verify)
{
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    cr_assert(adyen_hmac_key_decode(KEY_1, key));
    const struct adyen_hmac_fields good = fields_of(&vectors[0]);
    for (int i = 0; i < 8; i++) {
        struct adyen_hmac_fields f = good;
        const char **slot[] = {&f.psp_reference,
                               &f.original_reference,
                               &f.merchant_account_code,
                               &f.merchant_reference,
                               &f.value,
                               &f.currency,
                               &f.event_code,
                               &f.success};
        *slot[i] = i == 4 ? "1131" : i == 7 ? "false" : "X";
        cr_expect_not(adyen_hmac_verify(key, &f, vectors[0].signature), "field %d tampered", i);
    }
    /* A field moved across the separator signs differently too. */
    struct adyen_hmac_fields moved = good;
    moved.merchant_account_code = "TestMerchant:TestPayment-1407325143704";
    moved.merchant_reference = NULL;
    cr_expect_not(adyen_hmac_verify(key, &moved, vectors[0].signature));
    cr_expect(adyen_hmac_verify(key, &good, vectors[0].signature));
}

Test(adyen_hmac, missing_or_malformed_signatures_do_not_verify)
{
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    cr_assert(adyen_hmac_key_decode(KEY_1, key));
    const struct adyen_hmac_fields fields = fields_of(&vectors[0]), *f = &fields;
    cr_expect_not(adyen_hmac_verify(key, f, NULL));
    cr_expect_not(adyen_hmac_verify(key, f, ""));
    cr_expect_not(adyen_hmac_verify(key, f, "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0"));
    cr_expect_not(adyen_hmac_verify(key, f, "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=="));
}

Test(adyen_hmac, keys_are_64_hex_characters)
{
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    cr_expect(adyen_hmac_key_valid(KEY_1));
    cr_expect(
        adyen_hmac_key_valid("44782def547aaa06c910c43932b1eb0c71fc68d9d0c057550c48ec2acf6ba056"));
    cr_expect_not(adyen_hmac_key_valid(NULL));
    cr_expect_not(adyen_hmac_key_valid(""));
    cr_expect_not(adyen_hmac_key_valid(KEY_1 "0"));
    cr_expect_not(
        adyen_hmac_key_valid("G4782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"));
    cr_expect_not(adyen_hmac_key_decode("short", key));
    /* Lower and upper case decode alike. */
    unsigned char lower[ADYEN_HMAC_KEY_LEN];
    cr_assert(adyen_hmac_key_decode(KEY_1, key));
    cr_assert(adyen_hmac_key_decode(
        "44782def547aaa06c910c43932b1eb0c71fc68d9d0c057550c48ec2acf6ba056", lower));
    cr_expect_eq(memcmp(key, lower, sizeof(key)), 0);
    cr_expect_eq(key[0], 0x44);
    cr_expect_eq(key[31], 0x56);
}
