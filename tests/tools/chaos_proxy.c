/* SPDX-License-Identifier: MIT */
/*
 * chaos_proxy: a fault-injecting proxy between sagad and one participant,
 * for the process-level chaos test (scripts/chaos.sh).
 *
 *   chaos_proxy --listen URL --forward URL [--seed N] [--drop P]
 *               [--dup P] [--delay P] [--delay-max MS] [--stats FILE]
 *
 * sagad dials --listen as if the proxy were the participant; the proxy
 * dials the participant at --forward. Between them it drops a share of the
 * messages, sends a share twice and holds a share back for a random time
 * (which reorders them), in both directions: commands and replies.
 *
 * DESIGN: two raw sockets, a rep0 facing sagad and a req0 facing the
 * participant (nng_rep0_open_raw, nng_req0_open_raw). In raw mode nng keeps
 * the request's backtrace (the pipe ids and the request id) in the
 * message header and routes a reply by it, so the proxy forwards whole
 * messages, header and body, without ever looking inside them. Each
 * direction has a receive thread, which decides a message's fate with its
 * own seeded generator (so the decisions of one direction are a function
 * of the seed and the message order), and a send thread, which sends what
 * is due from a queue ordered by due time (an undelayed message is due at
 * once, behind the others due at once). The dialler redials the
 * participant when it restarts (nng does it in the background); what the
 * participant had not answered when it died is lost, and sagad's attempt
 * timeout covers it. A reply for a sagad that has since restarted has no
 * pipe to go to and is dropped by nng.
 *
 * The main thread owns the signals: SIGTERM and SIGINT write the counts
 * and exit 0, SIGUSR1 turns fault injection off (every message forwarded
 * at once, as is), SIGUSR2 turns it on again. The counts are also written
 * every --stats-interval milliseconds (default 250), so that a kill -9
 * loses at most that much of them; the file is replaced atomically
 * (written aside, then renamed) and holds key=value lines.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

/* How long a send may wait for the peer (the participant's pipe after a
 * restart) before the message counts as lost. */
#define CHAOS_PROXY_SEND_MS 1000
/* Messages that nng buffers per socket while no pipe can take them. */
#define CHAOS_PROXY_SENDBUF 1024
/* Largest message forwarded (sagad's own limit is below). */
#define CHAOS_PROXY_MAXSZ (64 * 1024 * 1024)

enum {
	CP_REQ, /* sagad -> participant: commands */
	CP_REP, /* participant -> sagad: replies */
	CP_NDIR,
};

static const char *const chaos_proxy_dir_name[CP_NDIR] = { "req", "rep" };

/* One message waiting for its time. */
typedef struct cp_item {
	int64_t  due_us;
	uint64_t seq; /* keeps the order of messages due at once */
	nng_msg *msg;
} cp_item;

/* One direction: where it reads, where it writes, what is waiting. */
typedef struct cp_dir {
	nng_socket      from;
	nng_socket      to;
	uint64_t        rng;
	pthread_t       recv_thr;
	pthread_t       send_thr;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	cp_item        *heap;
	size_t          n;
	size_t          cap;
	uint64_t        seq;
	/* Counts. */
	atomic_uint_fast64_t received;
	atomic_uint_fast64_t forwarded;
	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t duplicated;
	atomic_uint_fast64_t delayed;
	atomic_uint_fast64_t lost;
} cp_dir;

typedef struct cp_opts {
	const char *listen;
	const char *forward;
	const char *stats;
	uint64_t    seed;
	double      drop;
	double      dup;
	double      delay;
	int64_t     delay_max_ms;
	int64_t     stats_ms;
} cp_opts;

static cp_opts     cp_o;
static cp_dir      cp_dirs[CP_NDIR];
static atomic_bool cp_faults  = true;
static atomic_bool cp_closing = false;

static int64_t
chaos_proxy_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* splitmix64: the seed of each direction's generator. */
static uint64_t
chaos_proxy_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31));
}

/* xorshift64*: a uniform double in [0, 1). */
static double
chaos_proxy_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (
	    (double) ((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0);
}

static bool
chaos_proxy_item_before(const cp_item *a, const cp_item *b)
{
	return (a->due_us < b->due_us
	    || (a->due_us == b->due_us && a->seq < b->seq));
}

/* Queues msg on d to leave at due_us. Called with d->mtx held. Returns 0
 * or -1 (no memory: the caller frees msg). */
static int
chaos_proxy_push(cp_dir *d, nng_msg *msg, int64_t due_us)
{
	size_t i;

	if (d->n == d->cap) {
		size_t   cap = d->cap ? d->cap * 2 : 256;
		cp_item *h   = realloc(d->heap, cap * sizeof(*h));

		if (h == NULL) {
			return (-1);
		}
		d->heap = h;
		d->cap  = cap;
	}
	i                 = d->n++;
	d->heap[i].due_us = due_us;
	d->heap[i].seq    = d->seq++;
	d->heap[i].msg    = msg;
	while (i > 0) {
		size_t  parent = (i - 1) / 2;
		cp_item t;

		if (!chaos_proxy_item_before(&d->heap[i], &d->heap[parent])) {
			break;
		}
		t               = d->heap[i];
		d->heap[i]      = d->heap[parent];
		d->heap[parent] = t;
		i               = parent;
	}
	return (0);
}

/* Takes the earliest item off d's queue. Called with d->mtx held and
 * d->n > 0. */
static cp_item
chaos_proxy_pop(cp_dir *d)
{
	cp_item top = d->heap[0];
	size_t  i   = 0;

	d->heap[0] = d->heap[--d->n];
	for (;;) {
		size_t  l = 2 * i + 1, r = l + 1, m = i;
		cp_item t;

		if (l < d->n
		    && chaos_proxy_item_before(&d->heap[l], &d->heap[m])) {
			m = l;
		}
		if (r < d->n
		    && chaos_proxy_item_before(&d->heap[r], &d->heap[m])) {
			m = r;
		}
		if (m == i) {
			break;
		}
		t          = d->heap[i];
		d->heap[i] = d->heap[m];
		d->heap[m] = t;
		i          = m;
	}
	return (top);
}

/* Queues one copy of a message, delayed or not, as the dice say. */
static void
chaos_proxy_schedule(cp_dir *d, nng_msg *msg, bool faults)
{
	int64_t due = 0; /* at once, in arrival order */
	int     rv;

	if (faults && cp_o.delay_max_ms > 0
	    && chaos_proxy_rand(&d->rng) < cp_o.delay) {
		int64_t ms = 1
		    + (int64_t) (chaos_proxy_rand(&d->rng)
		        * (double) cp_o.delay_max_ms);

		due = chaos_proxy_now_us() + ms * 1000;
		atomic_fetch_add(&d->delayed, 1);
	}
	pthread_mutex_lock(&d->mtx);
	rv = chaos_proxy_push(d, msg, due);
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mtx);
	if (rv != 0) {
		nng_msg_free(msg);
		atomic_fetch_add(&d->lost, 1);
	}
}

/* A direction's receive thread: every message that arrives is dropped,
 * queued once, or queued twice. */
static void *
chaos_proxy_recv_main(void *arg)
{
	cp_dir  *d = arg;
	nng_msg *msg, *copy;
	bool     faults;
	int      rv;

	for (;;) {
		if ((rv = nng_recvmsg(d->from, &msg, 0)) != 0) {
			if (rv == NNG_ECLOSED || atomic_load(&cp_closing)) {
				break;
			}
			/* ETIMEDOUT and the like: keep going. */
			continue;
		}
		atomic_fetch_add(&d->received, 1);
		faults = atomic_load(&cp_faults);
		if (faults && chaos_proxy_rand(&d->rng) < cp_o.drop) {
			atomic_fetch_add(&d->dropped, 1);
			nng_msg_free(msg);
			continue;
		}
		copy = NULL;
		if (faults && chaos_proxy_rand(&d->rng) < cp_o.dup) {
			if (nng_msg_dup(&copy, msg) == 0) {
				atomic_fetch_add(&d->duplicated, 1);
			} else {
				copy = NULL;
			}
		}
		chaos_proxy_schedule(d, msg, faults);
		if (copy != NULL) {
			chaos_proxy_schedule(d, copy, faults);
		}
	}
	return (NULL);
}

/* A direction's send thread: sends each queued message when it is due. */
static void *
chaos_proxy_send_main(void *arg)
{
	cp_dir *d = arg;
	cp_item it;
	int     rv;

	pthread_mutex_lock(&d->mtx);
	for (;;) {
		int64_t now;

		if (atomic_load(&cp_closing)) {
			break;
		}
		if (d->n == 0) {
			pthread_cond_wait(&d->cv, &d->mtx);
			continue;
		}
		now = chaos_proxy_now_us();
		if (d->heap[0].due_us > now) {
			struct timespec ts;
			int64_t         until = d->heap[0].due_us;

			ts.tv_sec  = (time_t) (until / 1000000);
			ts.tv_nsec = (long) (until % 1000000) * 1000;
			pthread_cond_timedwait(&d->cv, &d->mtx, &ts);
			continue;
		}
		it = chaos_proxy_pop(d);
		pthread_mutex_unlock(&d->mtx);
		if ((rv = nng_sendmsg(d->to, it.msg, 0)) != 0) {
			/* Still ours: nobody to take it in time. */
			nng_msg_free(it.msg);
			atomic_fetch_add(&d->lost, 1);
		} else {
			atomic_fetch_add(&d->forwarded, 1);
		}
		pthread_mutex_lock(&d->mtx);
	}
	while (d->n > 0) {
		it = chaos_proxy_pop(d);
		nng_msg_free(it.msg);
	}
	pthread_mutex_unlock(&d->mtx);
	return (NULL);
}

/* Writes the counts to --stats (aside, then renamed over it). */
static void
chaos_proxy_stats_write(void)
{
	char     tmp[4096];
	FILE    *f;
	uint64_t tot[6] = { 0 };

	if (cp_o.stats == NULL) {
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", cp_o.stats);
	if ((f = fopen(tmp, "w")) == NULL) {
		return;
	}
	fprintf(f, "listen=%s\nforward=%s\nseed=%" PRIu64 "\nfaults=%s\n",
	    cp_o.listen, cp_o.forward, cp_o.seed,
	    atomic_load(&cp_faults) ? "on" : "off");
	for (int i = 0; i < CP_NDIR; i++) {
		cp_dir  *d = &cp_dirs[i];
		uint64_t v[6];

		v[0] = atomic_load(&d->received);
		v[1] = atomic_load(&d->forwarded);
		v[2] = atomic_load(&d->dropped);
		v[3] = atomic_load(&d->duplicated);
		v[4] = atomic_load(&d->delayed);
		v[5] = atomic_load(&d->lost);
		fprintf(f,
		    "%s_received=%" PRIu64 "\n%s_forwarded=%" PRIu64 "\n"
		    "%s_dropped=%" PRIu64 "\n%s_duplicated=%" PRIu64 "\n"
		    "%s_delayed=%" PRIu64 "\n%s_lost=%" PRIu64 "\n",
		    chaos_proxy_dir_name[i], v[0], chaos_proxy_dir_name[i],
		    v[1], chaos_proxy_dir_name[i], v[2],
		    chaos_proxy_dir_name[i], v[3], chaos_proxy_dir_name[i],
		    v[4], chaos_proxy_dir_name[i], v[5]);
		for (int k = 0; k < 6; k++) {
			tot[k] += v[k];
		}
	}
	fprintf(f,
	    "received=%" PRIu64 "\nforwarded=%" PRIu64 "\n"
	    "dropped=%" PRIu64 "\nduplicated=%" PRIu64 "\n"
	    "delayed=%" PRIu64 "\nlost=%" PRIu64 "\n",
	    tot[0], tot[1], tot[2], tot[3], tot[4], tot[5]);
	if (fclose(f) != 0 || rename(tmp, cp_o.stats) != 0) {
		remove(tmp);
	}
}

static void
chaos_proxy_usage(FILE *f)
{
	fprintf(f,
	    "Usage: chaos_proxy --listen URL --forward URL [options]\n"
	    "A fault-injecting proxy between sagad (which dials --listen) "
	    "and a participant\n"
	    "(dialled at --forward). It forwards whole nng messages both "
	    "ways, and drops,\n"
	    "duplicates and delays a seeded random share of them.\n"
	    "  --listen URL         where sagad connects (raw REP socket)\n"
	    "  --forward URL        the participant (raw REQ socket, "
	    "redialled)\n"
	    "  --seed N             random seed (default 1)\n"
	    "  --drop P             share of messages dropped "
	    "(0..1, default 0)\n"
	    "  --dup P              share of messages sent twice "
	    "(0..1, default 0)\n"
	    "  --delay P            share of messages held back "
	    "(0..1, default 1 when\n"
	    "                       --delay-max is given, else 0)\n"
	    "  --delay-max MS       longest hold-back, uniform in "
	    "1..MS (default 0)\n"
	    "  --stats FILE         write the counts there (key=value "
	    "lines), periodically\n"
	    "                       and at exit\n"
	    "  --stats-interval MS  how often (default 250)\n"
	    "Signals: SIGTERM/SIGINT write the counts and exit 0; SIGUSR1 "
	    "stops injecting\n"
	    "faults (everything forwarded at once), SIGUSR2 starts again.\n");
}

static int
chaos_proxy_prob(const char *opt, const char *s, double *out)
{
	char  *end;
	double v;

	errno = 0;
	v     = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !(v >= 0.0) || v > 1.0) {
		fprintf(stderr,
		    "chaos_proxy: %s \"%s\": expected a number in 0..1\n", opt,
		    s);
		return (-1);
	}
	*out = v;
	return (0);
}

static int
chaos_proxy_int(
    const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
	char     *end;
	long long v;

	errno = 0;
	v     = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max) {
		fprintf(stderr,
		    "chaos_proxy: %s \"%s\": expected an integer in "
		    "%lld..%lld\n",
		    opt, s, (long long) min, (long long) max);
		return (-1);
	}
	*out = v;
	return (0);
}

static int
chaos_proxy_parse(int argc, char **argv)
{
	bool    delay_set = false;
	int64_t v;

	cp_o.seed     = 1;
	cp_o.stats_ms = 250;
	for (int i = 1; i < argc; i++) {
		const char *a   = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			chaos_proxy_usage(stdout);
			exit(0);
		}
		if (val == NULL) {
			fprintf(stderr, "chaos_proxy: %s: %s\n", a,
			    strncmp(a, "--", 2) == 0 ? "needs a value"
			                             : "unexpected argument");
			return (-1);
		}
		i++;
		if (strcmp(a, "--listen") == 0) {
			cp_o.listen = val;
		} else if (strcmp(a, "--forward") == 0) {
			cp_o.forward = val;
		} else if (strcmp(a, "--stats") == 0) {
			cp_o.stats = val;
		} else if (strcmp(a, "--seed") == 0) {
			if (chaos_proxy_int(a, val, 0, INT64_MAX, &v) != 0) {
				return (-1);
			}
			cp_o.seed = (uint64_t) v;
		} else if (strcmp(a, "--drop") == 0) {
			if (chaos_proxy_prob(a, val, &cp_o.drop) != 0) {
				return (-1);
			}
		} else if (strcmp(a, "--dup") == 0) {
			if (chaos_proxy_prob(a, val, &cp_o.dup) != 0) {
				return (-1);
			}
		} else if (strcmp(a, "--delay") == 0) {
			if (chaos_proxy_prob(a, val, &cp_o.delay) != 0) {
				return (-1);
			}
			delay_set = true;
		} else if (strcmp(a, "--delay-max") == 0) {
			if (chaos_proxy_int(
			        a, val, 0, 600000, &cp_o.delay_max_ms)
			    != 0) {
				return (-1);
			}
		} else if (strcmp(a, "--stats-interval") == 0) {
			if (chaos_proxy_int(
			        a, val, 10, 3600000, &cp_o.stats_ms)
			    != 0) {
				return (-1);
			}
		} else {
			fprintf(
			    stderr, "chaos_proxy: unknown option \"%s\"\n", a);
			return (-1);
		}
	}
	if (cp_o.listen == NULL || cp_o.forward == NULL) {
		fprintf(stderr,
		    "chaos_proxy: give --listen URL and "
		    "--forward URL\n");
		return (-1);
	}
	if (!delay_set && cp_o.delay_max_ms > 0) {
		cp_o.delay = 1.0;
	}
	return (0);
}

/* Opens both sockets: listens for sagad, dials the participant. */
static int
chaos_proxy_open(nng_socket *front, nng_socket *back)
{
	int rv;

	if ((rv = nng_rep0_open_raw(front)) != 0
	    || (rv = nng_req0_open_raw(back)) != 0) {
		fprintf(stderr, "chaos_proxy: opening sockets: %s\n",
		    nng_strerror(rv));
		return (-1);
	}
	nng_socket_set_size(*front, NNG_OPT_RECVMAXSZ, CHAOS_PROXY_MAXSZ);
	nng_socket_set_size(*back, NNG_OPT_RECVMAXSZ, CHAOS_PROXY_MAXSZ);
	nng_socket_set_ms(*front, NNG_OPT_SENDTIMEO, CHAOS_PROXY_SEND_MS);
	nng_socket_set_ms(*back, NNG_OPT_SENDTIMEO, CHAOS_PROXY_SEND_MS);
	nng_socket_set_int(*back, NNG_OPT_SENDBUF, CHAOS_PROXY_SENDBUF);
	/* A restarted participant is found again quickly. */
	nng_socket_set_ms(*back, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(*back, NNG_OPT_RECONNMAXT, 200);
	if ((rv = nng_listen(*front, cp_o.listen, NULL, 0)) != 0) {
		fprintf(stderr, "chaos_proxy: listening on %s: %s\n",
		    cp_o.listen, nng_strerror(rv));
		return (-1);
	}
	/* Non-blocking: the participant may not be up yet. */
	if ((rv = nng_dial(*back, cp_o.forward, NULL, NNG_FLAG_NONBLOCK))
	    != 0) {
		fprintf(stderr, "chaos_proxy: dialling %s: %s\n", cp_o.forward,
		    nng_strerror(rv));
		return (-1);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	nng_socket         front, back;
	sigset_t           sigs;
	struct timespec    ts;
	pthread_condattr_t ca;

	if (chaos_proxy_parse(argc, argv) != 0) {
		chaos_proxy_usage(stderr);
		return (2);
	}
	/* Every thread inherits the mask: only sigtimedwait below sees
	 * these signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (chaos_proxy_open(&front, &back) != 0) {
		return (1);
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int i = 0; i < CP_NDIR; i++) {
		cp_dir *d = &cp_dirs[i];

		d->from = i == CP_REQ ? front : back;
		d->to   = i == CP_REQ ? back : front;
		d->rng  = chaos_proxy_mix(cp_o.seed * 2 + (uint64_t) i) | 1;
		pthread_mutex_init(&d->mtx, NULL);
		pthread_cond_init(&d->cv, &ca);
		if (pthread_create(
		        &d->send_thr, NULL, chaos_proxy_send_main, d)
		        != 0
		    || pthread_create(
		           &d->recv_thr, NULL, chaos_proxy_recv_main, d)
		        != 0) {
			fprintf(stderr, "chaos_proxy: cannot start threads\n");
			return (1);
		}
	}
	fprintf(stderr,
	    "chaos_proxy: %s -> %s (seed %" PRIu64
	    ", drop %.3f, dup %.3f, delay %.3f up to %" PRId64 " ms)\n",
	    cp_o.listen, cp_o.forward, cp_o.seed, cp_o.drop, cp_o.dup,
	    cp_o.delay, cp_o.delay_max_ms);
	chaos_proxy_stats_write();
	ts.tv_sec  = (time_t) (cp_o.stats_ms / 1000);
	ts.tv_nsec = (long) (cp_o.stats_ms % 1000) * 1000000;
	for (;;) {
		int sig = sigtimedwait(&sigs, NULL, &ts);

		if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
		if (sig == SIGUSR1) {
			atomic_store(&cp_faults, false);
			fprintf(stderr, "chaos_proxy: faults off\n");
		} else if (sig == SIGUSR2) {
			atomic_store(&cp_faults, true);
			fprintf(stderr, "chaos_proxy: faults on\n");
		}
		chaos_proxy_stats_write();
	}
	/* Shut down: stop the threads, then write the final counts. */
	atomic_store(&cp_closing, true);
	nng_close(front);
	nng_close(back);
	for (int i = 0; i < CP_NDIR; i++) {
		cp_dir *d = &cp_dirs[i];

		pthread_mutex_lock(&d->mtx);
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mtx);
		pthread_join(d->recv_thr, NULL);
		pthread_join(d->send_thr, NULL);
		free(d->heap);
	}
	chaos_proxy_stats_write();
	fprintf(stderr, "chaos_proxy: stopped\n");
	return (0);
}
