/*
 * procstat: see procstat.h.
 */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fields of /proc/<pid>/stat after the command name, which may hold
 * spaces and parentheses itself: everything after its last ')'. */
struct stat_fields {
    long ppid;
    unsigned long long utime, stime;
    long long cutime, cstime;
};

static bool read_stat(pid_t pid, struct stat_fields *f)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    const char *rest = strrchr(buf, ')');
    /* proc(5): state ppid pgrp session tty_nr tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime */
    return rest != NULL &&
           sscanf(rest + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                  &f->ppid, &f->utime, &f->stime, &f->cutime, &f->cstime) == 5;
}

static double ticks_to_s(long long ticks)
{
    static long hz;
    if (hz <= 0)
        hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}

bool procstat_sample(pid_t pid, struct proc_sample *s)
{
    struct stat_fields f;
    char path[64], line[256];

    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->hwm_mib = -1;
    snprintf(s->name, sizeof(s->name), "?");
    if (!read_stat(pid, &f))
        return false;
    s->cpu_s = ticks_to_s((long long)(f.utime + f.stime));
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    while (fgets(line, sizeof(line), fp) != NULL) {
        long kb;
        if (sscanf(line, "Name: %31s", s->name) == 1)
            continue;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            s->hwm_mib = kb / 1024.0;
    }
    fclose(fp);
    return true;
}

/* Call fn for every pid whose parent is parent. */
static void each_child(pid_t parent, void (*fn)(pid_t pid, void *arg), void *arg)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat_fields f;
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || !read_stat((pid_t)pid, &f) || f.ppid != (long)parent)
            continue;
        fn((pid_t)pid, arg);
    }
    closedir(d);
}

struct children_acc {
    struct proc_sample *out;
    int max, n;
};

static void add_child(pid_t pid, void *arg)
{
    struct children_acc *acc = arg;
    if (acc->n < acc->max && procstat_sample(pid, &acc->out[acc->n]))
        acc->n++;
}

int procstat_children(pid_t parent, struct proc_sample *out, int max)
{
    struct children_acc acc = {out, max, 0};
    each_child(parent, add_child, &acc);
    return acc.n;
}

static void add_child_cpu(pid_t pid, void *arg)
{
    struct stat_fields f;
    if (read_stat(pid, &f))
        *(double *)arg += ticks_to_s((long long)(f.utime + f.stime));
}

double procstat_tree_cpu(pid_t pid)
{
    struct stat_fields f;
    if (!read_stat(pid, &f))
        return -1;
    double cpu = ticks_to_s((long long)(f.utime + f.stime) + f.cutime + f.cstime);
    each_child(pid, add_child_cpu, &cpu);
    return cpu;
}
