#include <criterion/criterion.h>

#include "kafka/offset_tracker.h"

static struct offset_tracker *ot;

static void setup(void)
{
    ot = offset_tracker_new();
    cr_assert_not_null(ot);
}

static void teardown(void)
{
    offset_tracker_free(ot);
}

TestSuite(offset_tracker, .init = setup, .fini = teardown);

Test(offset_tracker, in_order_completion_commits_each_message)
{
    for (int64_t o = 10; o < 13; o++)
        cr_assert(offset_tracker_add(ot, "t", 0, o));
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 10), 11);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 11), 12);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 12), 13);
    cr_expect_eq(offset_tracker_pending(ot), 0);
}

Test(offset_tracker, a_slow_message_holds_back_the_commit)
{
    for (int64_t o = 0; o < 4; o++)
        cr_assert(offset_tracker_add(ot, "t", 0, o));
    /* 1, 2, 3 finish while 0 is still at the gateway: nothing may be committed,
     * or a crash now would skip message 0. */
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 1), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 3), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 2), -1);
    cr_expect_eq(offset_tracker_pending(ot), 1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 0), 4);
    cr_expect_eq(offset_tracker_pending(ot), 0);
}

Test(offset_tracker, partitions_are_independent)
{
    cr_assert(offset_tracker_add(ot, "t", 0, 5));
    cr_assert(offset_tracker_add(ot, "t", 1, 7));
    cr_assert(offset_tracker_add(ot, "u", 0, 9));
    cr_expect_eq(offset_tracker_done(ot, "t", 1, 7), 8);
    cr_expect_eq(offset_tracker_done(ot, "u", 0, 9), 10);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 5), 6);
}

Test(offset_tracker, revoked_partition_is_forgotten)
{
    cr_assert(offset_tracker_add(ot, "t", 0, 1));
    cr_assert(offset_tracker_add(ot, "t", 0, 2));
    offset_tracker_forget(ot, "t", 0);
    cr_expect_eq(offset_tracker_pending(ot), 0);
    /* A late completion after the revoke must not commit for the new owner. */
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 1), -1);
}

Test(offset_tracker, unknown_or_repeated_done_changes_nothing)
{
    cr_assert(offset_tracker_add(ot, "t", 0, 1));
    cr_assert(offset_tracker_add(ot, "t", 0, 2));
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 99), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 2), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 2), -1);
    cr_expect_eq(offset_tracker_pending(ot), 1);
}

Test(offset_tracker, many_messages_grow_the_arrays)
{
    for (int64_t o = 0; o < 1000; o++)
        cr_assert(offset_tracker_add(ot, "t", 3, o));
    for (int64_t o = 999; o > 0; o--)
        cr_expect_eq(offset_tracker_done(ot, "t", 3, o), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 3, 0), 1000);
}

Test(offset_tracker, later_messages_finishing_behind_a_slow_one_are_folded)
{
    /* An alert waiting for a dead webhook while 100,000 later messages of its
     * partition finish: only the waiting one is kept, and when it is done
     * the commit jumps past all of them. */
    cr_assert(offset_tracker_add(ot, "t", 0, 0));
    for (int64_t o = 1; o <= 100000; o++) {
        cr_assert(offset_tracker_add(ot, "t", 0, o));
        cr_assert_eq(offset_tracker_done(ot, "t", 0, o), -1);
    }
    cr_expect_eq(offset_tracker_pending(ot), 1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 0), 100001);
}

Test(offset_tracker, gaps_between_offsets_commit_up_to_the_next_pending)
{
    cr_assert(offset_tracker_add(ot, "t", 0, 5));
    cr_assert(offset_tracker_add(ot, "t", 0, 7));
    cr_assert(offset_tracker_add(ot, "t", 0, 9));
    cr_assert(offset_tracker_add(ot, "t", 0, 11));
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 9), -1);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 5), 6);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 7), 10);
    cr_expect_eq(offset_tracker_done(ot, "t", 0, 11), 12);
}
