/*
 * fuzz: what the libFuzzer harnesses of tests/fuzz share (docs/fuzzing.md).
 *
 * Each fuzz_<target>.c defines the two entry points below. The same file is
 * linked twice: with libFuzzer (-Dfuzz=true: fuzz_<target>, which mutates
 * inputs) and with replay.c (every build: fuzz_replay_<target>, a Criterion
 * test that feeds it every file of corpus/<target> and regressions/<target>).
 * A harness reports a broken property with FUZZ_CHECK, which aborts: libFuzzer
 * saves the input as a crash, Criterion fails the replay test.
 */
#ifndef CR_FUZZ_H
#define CR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Called once before the first input (libFuzzer: with its argc/argv; the
 * replay test: with NULL, NULL). Returns 0. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one input of size bytes (not NUL-terminated). Returns 0; aborts on a
 * broken property. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with the failed condition and a printf-style explanation. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated malloc'd copy of size bytes (which may hold NULs: C sees
 * the text up to the first). The caller frees it. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True when a char array member of bufsize bytes (one the code under test
 * filled with snprintf) holds its terminating NUL. */
static inline int fuzz_terminated(const char *s, size_t bufsize)
{
    return memchr(s, '\0', bufsize) != NULL;
}

#endif
