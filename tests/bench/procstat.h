/*
 * procstat: CPU time and peak memory of processes, from /proc, for the
 * benchmarks. Linux only; every figure is read, never estimated.
 *
 * CPU is utime + stime of /proc/<pid>/stat (all threads), in seconds. Peak
 * RSS is VmHWM of /proc/<pid>/status. Other users' processes (PostgreSQL's,
 * run as postgres) are readable too: both files are world-readable.
 */
#ifndef CR_BENCH_PROCSTAT_H
#define CR_BENCH_PROCSTAT_H

#include <stdbool.h>
#include <sys/types.h>

struct proc_sample {
    pid_t pid;
    char name[32];  /* Name: of /proc/<pid>/status (at most 15 characters) */
    double cpu_s;   /* utime + stime */
    double hwm_mib; /* VmHWM; -1 when the kernel shows none */
};

/* Read one process; false if it is gone (or not readable). */
bool procstat_sample(pid_t pid, struct proc_sample *s);

/* Sample every live child of parent (by PPid); returns how many were
 * written to out (at most max). */
int procstat_children(pid_t parent, struct proc_sample *out, int max);

/* CPU of a process and its children: its own utime + stime, the cutime +
 * cstime of the children it has reaped, and utime + stime of the live ones.
 * For PostgreSQL's postmaster this is the whole server (the backends are its
 * children). -1 if pid is gone. */
double procstat_tree_cpu(pid_t pid);

#endif
