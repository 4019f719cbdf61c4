/*
 * local_stack: the local stack's services (deploy/local/stack) stopped and
 * started under a running test, for the outage tests (test_resilience.c)
 * and the chaos run (tests/chaos).
 */
#ifndef CR_TEST_LOCAL_STACK_H
#define CR_TEST_LOCAL_STACK_H

#include <stdbool.h>

/* deploy/local/stack VERB SERVICE (e.g. "stop", "pg"); true on exit 0 (its
 * output goes to the test's stderr when it fails). */
bool local_stack(const char *verb, const char *service);

/* Skip the current test unless SERVICE ("pg" or "kafka") under test is the
 * one deploy/local/stack runs (CR_TEST_PG_DSN or CR_TEST_KAFKA_BOOTSTRAP as
 * its env says) and, for Kafka, a real broker: restarting the in-memory
 * mock would lose every topic. */
void local_stack_require(const char *service);

#endif
