/* SPDX-License-Identifier: MIT */
/*
 * sagactl_ops: the commands that change sagas. start and the repairs
 * (retry, cancel, resolve, skip) go through sagad's API (saga_client), so
 * that the write-ahead rule holds: sagad decides, logs, and only then
 * acts. The bulk forms of retry and cancel select their sagas from the log
 * with the filters of list, show how many match and ask first. purge
 * deletes finished sagas (never FAILED ones) from the log directly, in
 * batches: sagad holds no finished saga.
 */
#ifndef COORDINATOR_SAGACTL_OPS_H
#define COORDINATOR_SAGACTL_OPS_H

#include "sagactl.h"

/* Each returns the exit status. */
int sagactl_ops_start(sagactl_ctx *ctx, int argc, char **argv);

/* sagactl_ops_status asks sagad for one saga's state; sagactl_ops_wait
 * waits (up to --timeout) until it has ended. */
int sagactl_ops_status(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_wait(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_retry(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_cancel(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_resolve(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_skip(sagactl_ctx *ctx, int argc, char **argv);
int sagactl_ops_purge(sagactl_ctx *ctx, int argc, char **argv);

/* sagactl_ops_ping asks an endpoint (sagad, or a participant) for PONG. */
int sagactl_ops_ping(sagactl_ctx *ctx, int argc, char **argv);

#endif /* COORDINATOR_SAGACTL_OPS_H */
