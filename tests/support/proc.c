/* SPDX-License-Identifier: MIT */
/*
 * proc: process helpers for the integration tests. See proc.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "saga_client.h"

struct proc {
	pid_t pid;
	bool  reaped;
	int   status;
};

static int64_t
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int
proc_start(proc **out, char *const argv[], const char *logpath)
{
	proc *p = calloc(1, sizeof(*p));
	pid_t pid;

	if (p == NULL) {
		return (-1);
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		perror("fork");
		free(p);
		return (-1);
	}
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int in = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (in >= 0) {
			dup2(in, 0);
		}
		/* Its own process group, so that a test's kill reaches only
		 * it. */
		setpgid(0, 0);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	p->pid = pid;
	*out   = p;
	return (0);
}

pid_t
proc_pid(const proc *p)
{
	return (p->pid);
}

int
proc_signal(proc *p, int sig)
{
	if (p->reaped) {
		return (-1);
	}
	return (kill(p->pid, sig));
}

int
proc_wait(proc *p, int timeout_ms, int *status)
{
	int64_t end = proc_now_ms() + timeout_ms;

	while (!p->reaped) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);

		if (r == p->pid) {
			p->reaped = true;
			break;
		}
		if (proc_now_ms() >= end) {
			return (-1);
		}
		poll(NULL, 0, 5);
	}
	if (status != NULL) {
		*status = p->status;
	}
	return (0);
}

bool
proc_running(proc *p)
{
	return (proc_wait(p, 0, NULL) != 0);
}

void
proc_free(proc *p)
{
	if (p == NULL) {
		return;
	}
	if (!p->reaped) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
	}
	free(p);
}

void
proc_dump_log(const char *logpath, int lines)
{
	char cmd[1024];

	fprintf(stderr, "---- last %d lines of %s ----\n", lines, logpath);
	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, logpath);
	(void) !system(cmd);
	fprintf(stderr, "----\n");
}

/* Reads all of fd into a malloc'd string. */
static char *
proc_slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char  *buf = malloc(cap);

	if (buf == NULL) {
		return (NULL);
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 1024) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		len += (size_t) n;
	}
	buf[len] = '\0';
	return (buf);
}

int
proc_run(char *const argv[], int timeout_ms, char **out, char **err)
{
	char  opath[] = "/tmp/proc_run_out.XXXXXX";
	char  epath[] = "/tmp/proc_run_err.XXXXXX";
	int   ofd     = mkstemp(opath);
	int   efd     = mkstemp(epath);
	pid_t pid;
	int   status = 0;
	int   rv     = -1;

	if (ofd < 0 || efd < 0) {
		return (-1);
	}
	unlink(opath);
	unlink(epath);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid > 0) {
		int64_t end = proc_now_ms() + timeout_ms;

		for (;;) {
			pid_t r = waitpid(pid, &status, WNOHANG);

			if (r == pid) {
				rv = WIFEXITED(status) ? WEXITSTATUS(status)
				                       : -1;
				break;
			}
			if (proc_now_ms() >= end) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				fprintf(stderr, "%s: timed out\n", argv[0]);
				break;
			}
			poll(NULL, 0, 5);
		}
	}
	if (out != NULL) {
		lseek(ofd, 0, SEEK_SET);
		*out = proc_slurp(ofd);
	}
	if (err != NULL) {
		lseek(efd, 0, SEEK_SET);
		*err = proc_slurp(efd);
	}
	close(ofd);
	close(efd);
	return (rv);
}

int
test_free_port(void)
{
	for (int tries = 0; tries < 100; tries++) {
		struct sockaddr_in sa;
		socklen_t          len = sizeof(sa);
		int                fd  = socket(AF_INET, SOCK_STREAM, 0);
		int                port;

		memset(&sa, 0, sizeof(sa));
		sa.sin_family      = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port        = 0;
		if (fd < 0 || bind(fd, (struct sockaddr *) &sa, len) != 0 ||
		    getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
			if (fd >= 0) {
				close(fd);
			}
			continue;
		}
		port = ntohs(sa.sin_port);
		close(fd);
		return (port);
	}
	return (-1);
}

int
test_ping(const char *url, int timeout_ms)
{
	saga_client *c;
	char         err[256];
	int64_t      end = proc_now_ms() + timeout_ms;
	proto_msg    req, rep;

	if (saga_client_open(&c, url, err, sizeof(err)) != 0) {
		fprintf(stderr, "test_ping: %s\n", err);
		return (-1);
	}
	proto_msg_init(&req);
	req.type = PROTO_T_PING;
	while (proc_now_ms() < end) {
		if (saga_client_call(c, &req, 200, &rep, err, sizeof(err)) ==
		        0 &&
		    rep.type == PROTO_T_PONG) {
			proto_msg_fini(&rep);
			saga_client_free(c);
			return (0);
		}
		proto_msg_fini(&rep);
	}
	saga_client_free(c);
	fprintf(stderr, "test_ping: %s did not answer within %d ms\n", url,
	    timeout_ms);
	return (-1);
}

int
test_raw_sp_connect(int port)
{
	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0,
		0 };
	struct sockaddr_in sa;
	unsigned char      peer[8];
	size_t             got = 0;
	int                fd  = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    write(fd, hello, sizeof(hello)) != (ssize_t) sizeof(hello)) {
		fprintf(stderr, "test_raw_sp_connect: port %d: %s\n", port,
		    strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return (-1);
	}
	while (got < sizeof(peer)) {
		ssize_t n = read(fd, peer + got, sizeof(peer) - got);

		if (n <= 0) {
			fprintf(stderr,
			    "test_raw_sp_connect: port %d: no SP header\n",
			    port);
			close(fd);
			return (-1);
		}
		got += (size_t) n;
	}
	if (peer[5] != 0x31) { /* REP */
		fprintf(stderr, "test_raw_sp_connect: port %d: not REP\n",
		    port);
		close(fd);
		return (-1);
	}
	return (fd);
}

long
test_proc_field(pid_t pid, const char *file, const char *key)
{
	char   path[64], line[256];
	FILE  *f;
	long   v = -1;
	size_t k = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
	if ((f = fopen(path, "r")) == NULL) {
		return (-1);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, k) == 0) {
			v = strtol(line + k, NULL, 10);
		}
	}
	fclose(f);
	return (v);
}

bool
test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	int64_t end = proc_now_ms() + timeout_ms;

	for (;;) {
		if (cond(arg)) {
			return (true);
		}
		if (proc_now_ms() >= end) {
			return (false);
		}
		poll(NULL, 0, 10);
	}
}

const char *
test_tmpdir(void)
{
	static char dir[256];

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/saga-test.XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			abort();
		}
	}
	return (dir);
}

int
test_timeout_scale(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return (3);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return (3);
#else
	return (1);
#endif
#else
	return (1);
#endif
}
