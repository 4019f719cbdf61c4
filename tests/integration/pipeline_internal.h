/*
 * pipeline_internal: what the pipeline fixture's own files share (the
 * struct behind struct pipeline); tests include pipeline_fixture.h instead.
 */
#ifndef CR_TEST_PIPELINE_INTERNAL_H
#define CR_TEST_PIPELINE_INTERNAL_H

#include <curl/curl.h>

#include "child_process.h"
#include "config/config.h"
#include "harness.h"
#include "pipeline_fixture.h"

struct pipeline {
    struct itest t;
    struct config *cfg;
    char log_dir[512];
    char sim_url[128];
    struct child sim;
    struct child procs[PIPELINE_PROC_KINDS][PIPELINE_MAX_PROCS];
    CURL *curl; /* kept for the simulator's API: one connection for all calls */
};

/* Start gateway-sim (pipeline_sim.c) and set p->sim_url. */
void pipeline_sim_start(struct pipeline *p);

/* The topic name of a role: "cancel_failed", "retry", "outcome" or "dlq"
 * (fails the test for any other). */
const char *pipeline_topic_of(struct pipeline *p, const char *role);

#endif
