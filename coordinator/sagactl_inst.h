/* SPDX-License-Identifier: MIT */
/*
 * sagactl_inst: the instances subcommand of sagactl.
 */
#ifndef COORDINATOR_SAGACTL_INST_H
#define COORDINATOR_SAGACTL_INST_H

#include "sagactl.h"

/* sagactl_inst_run lists the sagad instances sharing the database, their
 * heartbeat and the leases they hold. */
int sagactl_inst_run(sagactl_ctx *ctx, int argc, char **argv);

#endif /* COORDINATOR_SAGACTL_INST_H */
