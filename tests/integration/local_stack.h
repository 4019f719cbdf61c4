/*
 * local_stack: a test stops and starts the local stack's services
 * (deploy/local/stack stop|start pg|kafka) to see what the processes do
 * through an outage, and only when that stack is the one under test.
 */
#ifndef CR_TEST_LOCAL_STACK_H
#define CR_TEST_LOCAL_STACK_H

#include <stdbool.h>

/* deploy/local/stack VERB SERVICE; true on exit 0 (its output goes to the
 * test's stderr when it fails). */
bool itest_stack(const char *verb, const char *service);

/* The value of NAME in `deploy/local/stack env` (caller frees), NULL when
 * absent. */
char *itest_stack_env(const char *name);

/* Skip the test unless service ("pg" or "kafka") is the one
 * deploy/local/stack runs (CR_TEST_PG_DSN / CR_TEST_KAFKA_BOOTSTRAP point at
 * it), and for "kafka" unless it is Apache Kafka: a restart of the in-memory
 * mock loses every topic. */
void itest_require_stack_service(const char *service);

#endif
