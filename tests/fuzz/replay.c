/*
 * replay: the fuzz harness of one target (fuzz_<target>.c, FUZZ_TARGET)
 * without libFuzzer, as a Criterion test of every build: each file of
 * tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target> goes through
 * LLVMFuzzerTestOneInput once. A regression is an input that once crashed or
 * broke a property (docs/fuzzing.md); this keeps it fixed under the
 * ASan/UBSan unit run too. Each file's name is printed before it runs, so
 * the last name on stderr is the culprit of a crash.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET (the harness name, e.g. \"event\") must be defined"
#endif
#ifndef FUZZ_DIR
#error "FUZZ_DIR (tests/fuzz of the source tree) must be defined"
#endif

/* Read path whole into a malloc'd buffer; *len its size. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    cr_assert_not_null(f, "could not open %s: %s", path, strerror(errno));
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf, "out of memory reading %s", path);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    cr_assert(!ferror(f), "could not read %s", path);
    fclose(f);
    *len = n;
    return buf;
}

static int not_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Feed every regular file of dir (sorted by name) to the harness; returns
 * how many. A missing dir is 0 files. */
static size_t replay_dir(const char *dir)
{
    struct dirent **names = NULL;
    size_t fed = 0;
    int n = scandir(dir, &names, not_hidden, alphasort);

    if (n < 0) {
        cr_assert_eq(errno, ENOENT, "could not read %s: %s", dir, strerror(errno));
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t len;
            uint8_t *data = read_file(path, &len);
            fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
            LLVMFuzzerTestOneInput(data, len);
            free(data);
            fed++;
        }
        free(names[i]);
    }
    free(names);
    return fed;
}

Test(fuzz_replay, corpus)
{
    LLVMFuzzerInitialize(NULL, NULL);
    size_t n = replay_dir(FUZZ_DIR "/corpus/" FUZZ_TARGET);
    cr_expect_gt(n, 0, "no seed in %s", FUZZ_DIR "/corpus/" FUZZ_TARGET);
}

Test(fuzz_replay, regressions)
{
    LLVMFuzzerInitialize(NULL, NULL);
    replay_dir(FUZZ_DIR "/regressions/" FUZZ_TARGET);
}
