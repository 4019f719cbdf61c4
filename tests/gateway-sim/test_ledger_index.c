/*
 * The simulator's hash index (ledger_index.c): every entry is found again,
 * through collisions and growth, and a cleared index finds nothing.
 */
#include <criterion/criterion.h>

#include <stdio.h>

#include "ledger_index.h"

Test(ledger_index, finds_every_entry_through_growth)
{
    struct ledger_index ix = {0};
    char key[32];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "tpay_%zu", i);
        cr_assert(ledger_index_add(&ix, ledger_index_hash(0, key), i));
    }
    for (size_t i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "tpay_%zu", i);
        size_t probe = 0, pos1, found = 0;
        while ((pos1 = ledger_index_next(&ix, ledger_index_hash(0, key), &probe)) != 0)
            found += pos1 - 1 == i;
        cr_expect_eq(found, 1, "%s found %zu times", key, found);
    }
    ledger_index_free(&ix);
}

Test(ledger_index, equal_hashes_are_all_candidates)
{
    struct ledger_index ix = {0};
    for (size_t i = 0; i < 100; i++)
        cr_assert(ledger_index_add(&ix, 42, i));
    size_t probe = 0, pos1, n = 0, sum = 0;
    while ((pos1 = ledger_index_next(&ix, 42, &probe)) != 0) {
        n++;
        sum += pos1 - 1;
    }
    cr_expect_eq(n, 100);
    cr_expect_eq(sum, 99 * 100 / 2);
    probe = 0;
    cr_expect_eq(ledger_index_next(&ix, 43, &probe), 0, "another hash has no candidate");
    ledger_index_clear(&ix);
    probe = 0;
    cr_expect_eq(ledger_index_next(&ix, 42, &probe), 0, "a cleared index finds nothing");
    ledger_index_free(&ix);
}

Test(ledger_index, tags_keep_gateways_apart)
{
    cr_expect_neq(ledger_index_hash(1, "k"), ledger_index_hash(2, "k"));
}
