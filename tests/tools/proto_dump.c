/* SPDX-License-Identifier: MIT */
/*
 * proto_dump: decodes one message and prints what it is, for shell tests
 * and for people debugging the wire: "TYPE" and, for an ERROR, "code
 * NAME: message".
 *
 *   proto_dump < MESSAGE           decode the bytes on standard input
 *   proto_dump --send URL < BYTES  send the bytes as they are (REQ) and
 *                                  decode the answer
 *
 * Exit status 0 when it decodes, 1 when it does not (the decode error is
 * printed), 2 on a usage error, 3 when nothing answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_msg.h"
#include "saga_client.h"
#include "saga_err.h"

int
main(int argc, char **argv)
{
	proto_buf    b, reply;
	proto_msg    m;
	proto_error  err;
	saga_client *c = NULL;
	char         chunk[65536], why[256];
	size_t       n;
	int          rv;

	if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--send") == 0)) {
		fprintf(stderr, "usage: proto_dump [--send URL] < MESSAGE\n");
		return (2);
	}
	proto_buf_init(&b);
	proto_buf_init(&reply);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (proto_buf_append(&b, chunk, n) != 0) {
			return (2);
		}
	}
	if (argc == 3) {
		if (saga_client_dial(&c, argv[2], why, sizeof(why)) != 0 ||
		    saga_client_call_raw(c, proto_buf_raw(&b), 10000, &reply,
		        why, sizeof(why)) != 0) {
			printf("no answer: %s\n", why);
			saga_client_free(c);
			return (3);
		}
		saga_client_free(c);
		proto_buf_fini(&b);
		b = reply;
	}
	if ((rv = proto_msg_decode(b.data, b.len, NULL, &m, &err)) != 0) {
		printf("undecodable %s: %s\n", saga_errname(rv), err.msg);
		proto_buf_fini(&b);
		return (1);
	}
	if (m.type == PROTO_T_ERROR) {
		printf("ERROR %u %s: %.*s\n", m.code, saga_errname((int) m.code),
		    (int) m.message.len, m.message.ptr);
	} else {
		printf("%s\n", proto_type_name(m.type));
	}
	proto_msg_fini(&m);
	proto_buf_fini(&b);
	return (0);
}
