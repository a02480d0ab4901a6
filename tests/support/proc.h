/* SPDX-License-Identifier: MIT */
/*
 * proc: real processes for the integration tests (sagad, participants,
 * sagactl), their logs, and waiting for conditions instead of sleeping.
 */
#ifndef TESTS_SUPPORT_PROC_H
#define TESTS_SUPPORT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct proc proc;

/* proc_start runs argv (NULL-terminated; argv[0] is a path) with stdout
 * and stderr appended to logpath and stdin from /dev/null. Returns 0 or -1
 * (printing why). */
int proc_start(proc **out, char *const argv[], const char *logpath);

/* proc_pid returns the process id. */
pid_t proc_pid(const proc *p);

/* proc_signal sends sig. Returns 0 or -1. */
int proc_signal(proc *p, int sig);

/* proc_wait waits up to timeout_ms for the process to exit and stores its
 * wait status. Returns 0, or -1 on timeout. */
int proc_wait(proc *p, int timeout_ms, int *status);

/* proc_running tells whether the process has not exited yet. */
bool proc_running(proc *p);

/* proc_free kills the process (SIGKILL) if it still runs, reaps it and
 * frees p; NULL-safe. */
void proc_free(proc *p);

/* proc_dump_log prints the last lines of logpath to stderr (on failure). */
void proc_dump_log(const char *logpath, int lines);

/* proc_run runs argv to completion (up to timeout_ms) capturing stdout in
 * out (malloc'd, NUL-terminated; may be NULL) and stderr in err (same).
 * Returns the exit status (0..255), or -1 on timeout or failure to run. */
int proc_run(char *const argv[], int timeout_ms, char **out, char **err);

/* test_free_port returns a TCP port on 127.0.0.1 that nothing listens on
 * right now. */
int test_free_port(void);

/* test_ping waits up to timeout_ms until url answers a PING. Returns 0 or
 * -1. */
int test_ping(const char *url, int timeout_ms);

/* test_raw_sp_connect opens a TCP connection to 127.0.0.1:port and makes
 * the SP handshake of a REQ socket by hand (a raw client: nothing dials
 * again when the server closes it). Returns the descriptor, or -1
 * (printing why). */
int test_raw_sp_connect(int port);

/* test_proc_field reads the number after key ("VmRSS:") on its line of
 * /proc/PID/file ("status"), or -1. */
long test_proc_field(pid_t pid, const char *file, const char *key);

/* test_wait_until polls cond(arg) every 10 ms for up to timeout_ms.
 * Returns true as soon as it holds. */
bool test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* test_tmpdir makes (once) and returns a scratch directory for this test
 * process under the build tree or /tmp. */
const char *test_tmpdir(void);

/* test_timeout_scale returns how much slower than usual this build runs
 * (3 under sanitizers, else 1), to scale timeouts. */
int test_timeout_scale(void);

#endif /* TESTS_SUPPORT_PROC_H */
