/*
 * config_base: the smallest valid config, shared by the config tests
 * (test_config.c, test_config_limits.c); error cases append to it or
 * replace it.
 *
 * Lines: 1 database, 2 dsn, 3 kafka, 4 bootstrap, 5 gateways, 6 toss, 7 kind,
 * 8 secret_key; 17 YAML nodes (the top map; each key, value and map counts
 * one).
 */
#ifndef CR_TEST_CONFIG_BASE_H
#define CR_TEST_CONFIG_BASE_H

#define BASE                                                                                       \
    "database:\n"                                                                                  \
    "  dsn: host=db\n"                                                                             \
    "kafka:\n"                                                                                     \
    "  bootstrap.servers: k:9092\n"                                                                \
    "gateways:\n"                                                                                  \
    "  toss:\n"                                                                                    \
    "    kind: toss\n"                                                                             \
    "    secret_key: sk\n"
#define BASE_NODES 17

#endif
