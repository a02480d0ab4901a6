/* SPDX-License-Identifier: MIT */
/*
 * test_participant: a scriptable participant for the integration tests.
 *
 * It answers sagad's commands as told, per action name:
 *   ok            answer ok with the output {"done": ACTION, "n": COUNT}
 *   fail[:TEXT]   business failure
 *   retry         always answer retry
 *   retry:N       answer retry to the first N deliveries, then ok
 *   timeout       never answer
 *   timeout:N     do not answer the first N deliveries, then ok
 *   delay:MS      wait MS milliseconds, then ok
 *   error         answer with an ERROR message
 *   garbage       answer bytes that are not a message
 *   crash         exit at once, without answering (like kill -9)
 *   big:N         answer ok with an output holding an N-byte string
 *   deep:N        answer ok with an output holding maps nested N deep
 *                 (the output itself one level more)
 * Rules come from --rule ACTION=SPEC (repeatable) and from --rules FILE
 * (one ACTION=SPEC per line), which is read again whenever it changes, so
 * that a test can change behaviour while sagad runs. Unknown actions: ok.
 *
 * Like a real participant it is idempotent per (saga id, step, kind): a
 * repeated command gets the outcome recorded for the first one that
 * finished (ok or failed), a compensation of an action that never ran is a
 * null compensation (ok), and an action arriving after its compensation is
 * refused (failed). Everything it receives is appended to --record FILE as
 * "SAGA_ID STEP KIND ATTEMPT ACTION OUTCOME HOW" lines for the tests to
 * read; HOW is "run" when the command took effect now (its first ok or
 * failed), "replay" for a duplicate answered from what was recorded,
 * "null" for a null compensation, "refused" for an action after its
 * compensation, and "-" for an answer that recorded nothing (retry,
 * timeout, error). With --peak FILE it keeps in FILE the largest number
 * of commands it held at once in a delay (to check sagad's bulkhead).
 *
 * BATCH: without --batch it answers ERROR EMSGTYPE, like a participant
 * built before BATCH (sagad then sends it every command alone). With
 * --batch it answers each COMMAND of a BATCH by its rule (see
 * tp_handle_batch) and records a line "BATCH n" before them. With
 * --batch-error CODE it answers every BATCH with ERROR CODE and records
 * "BATCH-REFUSED". With --batch-extra each BATCH_REPLY ends with one
 * answer more than the BATCH had commands (a copy of the first). With
 * --batch-junk each BATCH_REPLY's envelope has an unknown key more, whose
 * value is an array of 1,000 nils.
 *
 * --max-message-bytes N accepts commands up to N bytes (default 1 MiB,
 * the protocol's), for a sagad run with a raised --max-message-bytes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "proto_msg.h"
#include "saga_err.h"
#include "saga_tls.h"

#define TP_CTX 64
#define TP_MAX_RULES 64

typedef struct tp_rule {
	char action[128];
	char spec[1024]; /* fail:TEXT with a long text */
} tp_rule;

typedef struct tp_seen {
	struct tp_seen *next;
	saga_id         id;
	uint32_t        step;
	uint32_t        kind;
	int             outcome; /* -1 none final yet, else proto_outcome */
	unsigned        deliveries;
	char            error[1024];
} tp_seen;

typedef struct tp_ctx {
	nng_ctx  ctx;
	nng_aio *aio;
	int      state; /* 0 recv, 1 sleeping, 2 send */
	nng_msg *reply;
	int      held; /* commands in the delay (a BATCH's: all of them) */
} tp_ctx;

static pthread_mutex_t tp_mtx = PTHREAD_MUTEX_INITIALIZER;
static tp_rule         tp_rules[TP_MAX_RULES];
static size_t          tp_nrules;
static tp_rule         tp_cli_rules[TP_MAX_RULES];
static size_t          tp_ncli;
static const char     *tp_rules_file;
static time_t          tp_rules_mtime;
static off_t           tp_rules_size;
static FILE           *tp_record;
static tp_seen        *tp_seen_list;
static nng_socket      tp_sock;
static unsigned        tp_count;
static proto_limits    tp_lim; /* decoding a command */

static void
tp_load_rules(void)
{
	struct stat sb;
	FILE       *f;
	char        line[2048];

	tp_nrules = 0;
	for (size_t i = 0; i < tp_ncli; i++) {
		tp_rules[tp_nrules++] = tp_cli_rules[i];
	}
	if (tp_rules_file == NULL || stat(tp_rules_file, &sb) != 0) {
		return;
	}
	tp_rules_mtime = sb.st_mtime;
	tp_rules_size  = sb.st_size;
	if ((f = fopen(tp_rules_file, "r")) == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL &&
	    tp_nrules < TP_MAX_RULES) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\r\n")] = '\0';
		if (eq == NULL || line[0] == '#') {
			continue;
		}
		*eq = '\0';
		snprintf(tp_rules[tp_nrules].action,
		    sizeof(tp_rules[0].action), "%.127s", line);
		snprintf(tp_rules[tp_nrules].spec, sizeof(tp_rules[0].spec),
		    "%.1023s", eq + 1);
		tp_nrules++;
	}
	fclose(f);
}

/* Returns the spec for action (caller holds tp_mtx). */
static const char *
tp_spec(const char *action)
{
	struct stat sb;

	if (tp_rules_file != NULL && stat(tp_rules_file, &sb) == 0 &&
	    (sb.st_mtime != tp_rules_mtime || sb.st_size != tp_rules_size)) {
		tp_load_rules();
	}
	/* The last rule for an action wins, so the file overrides --rule. */
	for (size_t i = tp_nrules; i > 0; i--) {
		if (strcmp(tp_rules[i - 1].action, action) == 0) {
			return (tp_rules[i - 1].spec);
		}
	}
	return ("ok");
}

static tp_seen *
tp_find(const saga_id *id, uint32_t step, uint32_t kind, bool create)
{
	tp_seen *s;

	for (s = tp_seen_list; s != NULL; s = s->next) {
		if (saga_id_equal(&s->id, id) && s->step == step &&
		    s->kind == kind) {
			return (s);
		}
	}
	if (!create || (s = calloc(1, sizeof(*s))) == NULL) {
		return (NULL);
	}
	s->id        = *id;
	s->step      = step;
	s->kind      = kind;
	s->outcome   = -1;
	s->next      = tp_seen_list;
	tp_seen_list = s;
	return (s);
}

static nng_msg *
tp_encode(const proto_msg *m)
{
	proto_buf b;
	nng_msg  *msg = NULL;

	proto_buf_init(&b);
	if (proto_msg_encode(m, &b) == 0 && nng_msg_alloc(&msg, 0) == 0) {
		nng_msg_append(msg, b.data, b.len);
	}
	proto_buf_fini(&b);
	return (msg);
}

/* Decides the answer to one command. Returns the reply (NULL: do not
 * answer) and sets *delay_ms. */
static nng_msg *
tp_handle(const proto_msg *cmd, int *delay_ms)
{
	char        action[128];
	char        idt[SAGA_ID_STRLEN + 1];
	const char *spec;
	tp_seen    *seen, *act = NULL;
	proto_msg   r;
	proto_obj  *out = NULL;
	proto_buf   ob;
	int         outcome = PROTO_OUTCOME_OK;
	const char *error   = NULL;
	bool        answer  = true;
	const char *how     = "-";
	unsigned    n;
	nng_msg    *msg;

	snprintf(action, sizeof(action), "%.*s", (int) cmd->action.len,
	    cmd->action.ptr);
	proto_buf_init(&ob);
	pthread_mutex_lock(&tp_mtx);
	tp_count++;
	spec = tp_spec(action);
	seen = tp_find(&cmd->id, cmd->step, cmd->kind, true);
	n    = ++seen->deliveries;
	if (cmd->kind == PROTO_KIND_ACTION) {
		tp_seen *comp =
		    tp_find(&cmd->id, cmd->step, PROTO_KIND_COMPENSATION, false);

		if (comp != NULL && comp->outcome >= 0 && seen->outcome < 0) {
			seen->outcome = PROTO_OUTCOME_FAILED;
			snprintf(seen->error, sizeof(seen->error),
			    "refused: already compensated");
			how = "refused";
		}
	} else {
		act = tp_find(&cmd->id, cmd->step, PROTO_KIND_ACTION, false);
	}
	if (seen->outcome >= 0) {
		outcome = seen->outcome;
		error   = seen->error;
		if (strcmp(how, "refused") != 0) {
			how = "replay";
		}
	} else if (cmd->kind == PROTO_KIND_COMPENSATION &&
	    (act == NULL || act->outcome != PROTO_OUTCOME_OK)) {
		/* Null compensation: the action never took effect; any later
		 * action is refused. */
		outcome = PROTO_OUTCOME_OK;
		if (act == NULL) {
			act = tp_find(&cmd->id, cmd->step, PROTO_KIND_ACTION,
			    true);
			act->outcome = PROTO_OUTCOME_FAILED;
			snprintf(act->error, sizeof(act->error),
			    "refused: already compensated");
		}
		seen->outcome = outcome;
		how           = "null";
	} else if (strcmp(spec, "crash") == 0) {
		fprintf(stderr, "test_participant: crash on %s\n", action);
		_exit(3);
	} else if (strncmp(spec, "fail", 4) == 0) {
		outcome = PROTO_OUTCOME_FAILED;
		snprintf(seen->error, sizeof(seen->error), "%s",
		    spec[4] == ':' ? spec + 5 : "business failure");
		error         = seen->error;
		seen->outcome = outcome;
		how           = "run";
	} else if (strcmp(spec, "retry") == 0 ||
	    (strncmp(spec, "retry:", 6) == 0 &&
	        n <= (unsigned) atoi(spec + 6))) {
		outcome = PROTO_OUTCOME_RETRY;
		error   = "try again";
	} else if (strcmp(spec, "timeout") == 0 ||
	    (strncmp(spec, "timeout:", 8) == 0 &&
	        n <= (unsigned) atoi(spec + 8))) {
		answer = false;
	} else if (strcmp(spec, "error") == 0) {
		outcome = -2;
	} else if (strcmp(spec, "garbage") == 0) {
		outcome = -3;
	} else {
		if (strncmp(spec, "delay:", 6) == 0) {
			*delay_ms = atoi(spec + 6);
		}
		seen->outcome = PROTO_OUTCOME_OK;
		how           = "run";
	}
	if (tp_record != NULL) {
		fprintf(tp_record, "%s %u %u %u %s %s %s\n",
		    saga_id_format(&cmd->id, idt), cmd->step, cmd->kind,
		    cmd->attempt, action,
		    !answer        ? "noanswer"
		        : outcome == -2 ? "error"
		        : outcome == -3 ? "garbage"
		                        : proto_outcome_name((uint32_t) outcome),
		    how);
		fflush(tp_record);
	}
	pthread_mutex_unlock(&tp_mtx);
	if (!answer) {
		return (NULL);
	}
	if (outcome == -3) {
		nng_msg_alloc(&msg, 0);
		nng_msg_append(msg, "\xc1garbage", 8);
		return (msg);
	}
	if (outcome == -2) {
		proto_msg_error_init(&r, cmd, SAGA_EINTERNAL,
		    "test participant told to answer an error");
		return (tp_encode(&r));
	}
	proto_msg_init(&r);
	r.type    = PROTO_T_REPLY;
	r.id      = cmd->id;
	r.step    = cmd->step;
	r.attempt = cmd->attempt;
	r.kind    = cmd->kind;
	r.outcome = (uint32_t) outcome;
	r.error   = proto_str_c(error);
	if (outcome == PROTO_OUTCOME_OK && proto_obj_alloc(&out) == 0) {
		proto_obj_put_str(out, "done", action);
		proto_obj_put_int(out, "step", cmd->step);
		if (strncmp(spec, "big:", 4) == 0) {
			size_t len = (size_t) atol(spec + 4);
			char  *big = malloc(len + 1);

			if (big != NULL) {
				memset(big, 'x', len);
				proto_obj_put_strn(out, "big", big, len);
				free(big);
			}
		}
		if (strncmp(spec, "deep:", 5) == 0) {
			proto_buf deep;
			int       levels = atoi(spec + 5);

			proto_buf_init(&deep);
			for (int i = 1; i < levels; i++) {
				proto_buf_append(&deep, "\x81\xa1" "d", 3);
			}
			proto_buf_append(&deep, "\x80", 1);
			proto_obj_put_raw(out, "deep", proto_buf_raw(&deep));
			proto_buf_fini(&deep);
		}
		proto_obj_encode(out, &ob);
		r.output = proto_buf_raw(&ob);
	}
	msg = tp_encode(&r);
	proto_obj_free(out);
	proto_buf_fini(&ob);
	return (msg);
}

static const char *tp_peak_file;
static int         tp_held;  /* commands in a delay now */
static int         tp_peak;  /* the most at once */
static bool        tp_batch; /* --batch: serve BATCH */
static int         tp_batch_error; /* --batch-error CODE: refuse BATCH */
static bool        tp_batch_extra; /* --batch-extra: one answer more */
static bool        tp_batch_junk; /* --batch-junk: an unknown key more */

/* The junk of --batch-junk: an unknown key whose value is an array of
 * 1,000 nils, what a participant could repeat to make sagad's decoder
 * build a tree 24 times the reply's size. */
static nng_msg *
tp_add_junk(nng_msg *reply)
{
	uint8_t *body = nng_msg_body(reply);
	uint8_t  hdr[6] = { 0xa2, 'z', 'z', 0xdc, 0x03, 0xe8 }; /* 1000 */
	uint8_t  nils[1000];

	/* The envelope is a fixmap of a few keys: one key more. */
	if (nng_msg_len(reply) == 0 || (body[0] & 0xf0) != 0x80 ||
	    (body[0] & 0x0f) == 0x0f) {
		return (reply);
	}
	body[0]++;
	memset(nils, 0xc0, sizeof(nils));
	if (nng_msg_append(reply, hdr, sizeof(hdr)) != 0 ||
	    nng_msg_append(reply, nils, sizeof(nils)) != 0) {
		nng_msg_free(reply);
		return (NULL);
	}
	return (reply);
}

/* Answers a BATCH: each COMMAND by its rule, in order, in one
 * BATCH_REPLY that is held back by the longest delay of them. A COMMAND
 * not to be answered (timeout) leaves the whole BATCH unanswered, and
 * garbage puts its bytes in the reply; a message that is not a COMMAND
 * gets its ERROR. The record gets a line "BATCH n" first. *n is set to
 * the number of messages. */
static nng_msg *
tp_handle_batch(const proto_msg *b, int *delay_ms, int *n)
{
	proto_buf   answers;
	proto_raw   one;
	proto_error perr;
	proto_msg   cmd, r;
	size_t      off = 0, count = 0;
	size_t      total = 0, first = 0;
	bool        silent = false;
	nng_msg    *reply;
	int         rv;

	for (proto_raw m = b->msgs; proto_batch_next(m, &off, &count, NULL,
	                                &one, &perr) == 0 &&
	     one.len > 0;) {
		total++;
	}
	*n = (int) total;
	pthread_mutex_lock(&tp_mtx);
	if (tp_record != NULL) {
		fprintf(tp_record, "BATCH %zu\n", total);
		fflush(tp_record);
	}
	pthread_mutex_unlock(&tp_mtx);
	proto_buf_init(&answers);
	off = count = 0;
	while ((rv = proto_batch_next(b->msgs, &off, &count, NULL, &one,
	            &perr)) == 0 &&
	    one.len > 0) {
		int d = 0;

		if ((rv = proto_msg_decode(one.ptr, one.len, &tp_lim, &cmd,
		         &perr)) != 0) {
			proto_msg_error_init(&r, NULL, rv, perr.msg);
			(void) proto_msg_encode(&r, &answers);
			continue;
		}
		if (cmd.type != PROTO_T_COMMAND) {
			proto_msg_error_init(
			    &r, &cmd, SAGA_EINVAL, "not a COMMAND");
			(void) proto_msg_encode(&r, &answers);
		} else if ((reply = tp_handle(&cmd, &d)) == NULL) {
			silent = true;
		} else {
			(void) proto_buf_append(&answers, nng_msg_body(reply),
			    nng_msg_len(reply));
			nng_msg_free(reply);
		}
		if (first == 0) {
			first = answers.len;
		}
		if (d > *delay_ms) {
			*delay_ms = d;
		}
		proto_msg_fini(&cmd);
	}
	if (silent) {
		proto_buf_fini(&answers);
		return (NULL);
	}
	if (tp_batch_extra && rv == 0 && first > 0) {
		/* A copy: the append may move answers' bytes. */
		uint8_t *copy = malloc(first);

		if (copy != NULL) {
			memcpy(copy, answers.data, first);
		}
		if (copy == NULL ||
		    proto_buf_append(&answers, copy, first) != 0) {
			rv = SAGA_ENOMEM;
			snprintf(perr.msg, sizeof(perr.msg), "out of memory");
		}
		free(copy);
	}
	if (rv != 0) {
		proto_msg_error_init(&r, NULL, rv, perr.msg);
	} else {
		proto_msg_init(&r);
		r.type = PROTO_T_BATCH_REPLY;
		r.msgs = proto_buf_raw(&answers);
	}
	reply = tp_encode(&r);
	proto_buf_fini(&answers);
	if (reply != NULL && tp_batch_junk && rv == 0) {
		reply = tp_add_junk(reply);
	}
	return (reply);
}

/* Counts a command into (+1) or out of (-1) a delay. */
static void
tp_hold(int d)
{
	pthread_mutex_lock(&tp_mtx);
	tp_held += d;
	if (tp_held > tp_peak) {
		FILE *f;

		tp_peak = tp_held;
		if (tp_peak_file != NULL &&
		    (f = fopen(tp_peak_file, "w")) != NULL) {
			fprintf(f, "%d\n", tp_peak);
			fclose(f);
		}
	}
	pthread_mutex_unlock(&tp_mtx);
}

static void
tp_cb(void *arg)
{
	tp_ctx     *c = arg;
	nng_msg    *msg;
	proto_msg   cmd;
	proto_error perr;
	int         delay = 0;
	int         nheld = 1;
	int         rv;

	switch (c->state) {
	case 0:
		if (nng_aio_result(c->aio) != 0) {
			if (nng_aio_result(c->aio) == NNG_ECLOSED) {
				return;
			}
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		msg = nng_aio_get_msg(c->aio);
		rv  = proto_msg_decode(nng_msg_body(msg), nng_msg_len(msg),
                    &tp_lim, &cmd, &perr);
		if (rv != 0) {
			proto_msg e;

			proto_msg_error_init(&e, NULL, rv, perr.msg);
			c->reply = tp_encode(&e);
		} else if (cmd.type == PROTO_T_PING) {
			proto_msg p;

			proto_msg_init(&p);
			p.type    = PROTO_T_PONG;
			p.service = proto_str_c("test_participant");
			c->reply  = tp_encode(&p);
		} else if (cmd.type == PROTO_T_BATCH && tp_batch_error != 0) {
			proto_msg e;

			pthread_mutex_lock(&tp_mtx);
			if (tp_record != NULL) {
				fprintf(tp_record, "BATCH-REFUSED\n");
				fflush(tp_record);
			}
			pthread_mutex_unlock(&tp_mtx);
			proto_msg_error_init(&e, NULL, tp_batch_error,
			    "test participant told to refuse BATCH");
			c->reply = tp_encode(&e);
		} else if (cmd.type == PROTO_T_BATCH && tp_batch) {
			c->reply = tp_handle_batch(&cmd, &delay, &nheld);
		} else if (cmd.type == PROTO_T_BATCH) {
			proto_msg e;

			/* Without --batch it refuses BATCH as a participant
			 * built before BATCH does, and sagad sends it every
			 * command alone. */
			proto_msg_error_init(&e, NULL, SAGA_EMSGTYPE,
			    "unknown message type 42");
			c->reply = tp_encode(&e);
		} else if (cmd.type != PROTO_T_COMMAND) {
			proto_msg e;

			proto_msg_error_init(&e, &cmd, SAGA_EINVAL,
			    "not a COMMAND");
			c->reply = tp_encode(&e);
		} else {
			c->reply = tp_handle(&cmd, &delay);
		}
		proto_msg_fini(&cmd);
		nng_msg_free(msg);
		if (c->reply == NULL) {
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		if (delay > 0) {
			c->state = 1;
			c->held  = nheld;
			tp_hold(c->held);
			nng_sleep_aio(delay, c->aio);
			return;
		}
		c->state = 2;
		nng_aio_set_msg(c->aio, c->reply);
		c->reply = NULL;
		nng_ctx_send(c->ctx, c->aio);
		return;
	case 1:
		tp_hold(-c->held);
		c->state = 2;
		nng_aio_set_msg(c->aio, c->reply);
		c->reply = NULL;
		nng_ctx_send(c->ctx, c->aio);
		return;
	case 2:
		if (nng_aio_result(c->aio) != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
		}
		c->state = 0;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
}

static void
tp_usage(FILE *f)
{
	fprintf(f,
	    "Usage: test_participant --listen URL [--rule ACTION=SPEC]...\n"
	    "                        [--rules FILE] [--record FILE] [--peak FILE]\n"
	    "                        [--tls-ca F --tls-cert F --tls-key F] [--batch]\n"
	    "                        [--batch-error CODE] [--batch-extra]\n"
	    "                        [--batch-junk] [--max-message-bytes N]\n"
	    "--batch serves BATCH (without it, BATCH gets ERROR EMSGTYPE, as\n"
	    "from a participant built before BATCH); --batch-error CODE\n"
	    "answers every BATCH with ERROR CODE (a number); --batch-extra\n"
	    "adds to each BATCH_REPLY a copy of its first answer;\n"
	    "--batch-junk adds an unknown key holding 1,000 nils.\n"
	    "A scriptable participant for tests. SPEC is one of: ok, "
	    "fail[:TEXT],\n"
	    "retry, retry:N, timeout, timeout:N, delay:MS, error, garbage, "
	    "crash,\n"
	    "big:N, deep:N (see the comment at the top of\n"
	    "test_participant.c).\n");
}

int
main(int argc, char **argv)
{
	const char   *listen = NULL;
	tp_ctx        ctxs[TP_CTX];
	saga_tls_opts tls    = { NULL, NULL, NULL, NULL };
	char          err[256];
	int           rv;

	tp_lim = proto_limits_default();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			listen = argv[++i];
		} else if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc &&
		    tp_ncli < TP_MAX_RULES && strchr(argv[i + 1], '=')) {
			char *eq = strchr(argv[++i], '=');

			snprintf(tp_cli_rules[tp_ncli].action,
			    sizeof(tp_cli_rules[0].action), "%.*s",
			    (int) (eq - argv[i]), argv[i]);
			snprintf(tp_cli_rules[tp_ncli].spec,
			    sizeof(tp_cli_rules[0].spec), "%s", eq + 1);
			tp_ncli++;
		} else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
			tp_rules_file = argv[++i];
		} else if (strcmp(argv[i], "--batch") == 0) {
			tp_batch = true;
		} else if (strcmp(argv[i], "--batch-error") == 0 &&
		    i + 1 < argc) {
			tp_batch_error = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--batch-extra") == 0) {
			tp_batch_extra = true;
		} else if (strcmp(argv[i], "--batch-junk") == 0) {
			tp_batch_junk = true;
		} else if (strcmp(argv[i], "--max-message-bytes") == 0 &&
		    i + 1 < argc) {
			tp_lim.max_msg_bytes = strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--peak") == 0 && i + 1 < argc) {
			tp_peak_file = argv[++i];
		} else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc) {
			if ((tp_record = fopen(argv[++i], "a")) == NULL) {
				perror(argv[i]);
				return (1);
			}
		} else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
			tls.ca = argv[++i];
		} else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
			tls.cert = argv[++i];
		} else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
			tls.key = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			tp_usage(stdout);
			return (0);
		} else {
			tp_usage(stderr);
			return (2);
		}
	}
	if (listen == NULL) {
		tp_usage(stderr);
		return (2);
	}
	tp_load_rules();
	if ((rv = nng_rep0_open(&tp_sock)) != 0) {
		fprintf(stderr, "test_participant: %s\n", nng_strerror(rv));
		return (1);
	}
	nng_socket_set_size(tp_sock, NNG_OPT_RECVMAXSZ, tp_lim.max_msg_bytes);
	if (saga_tls_listen(tp_sock, listen, &tls, err, sizeof(err)) != 0) {
		fprintf(stderr, "test_participant: %s\n", err);
		return (1);
	}
	for (int i = 0; i < TP_CTX; i++) {
		ctxs[i].state = 0;
		ctxs[i].reply = NULL;
		nng_ctx_open(&ctxs[i].ctx, tp_sock);
		nng_aio_alloc(&ctxs[i].aio, tp_cb, &ctxs[i]);
		nng_ctx_recv(ctxs[i].ctx, ctxs[i].aio);
	}
	for (;;) {
		pause();
	}
}
