/* SPDX-License-Identifier: MIT */
/*
 * sagactl_show: `sagactl show ID`, the story of one saga: its header
 * (definition and version, state and why, input, business key, trace id,
 * times), how each step's action and compensation ended with the outputs,
 * and the timeline of its events beside a Gantt chart (sagactl_chart.h).
 * Reads the saga log directly from PostgreSQL.
 */
#ifndef COORDINATOR_SAGACTL_SHOW_H
#define COORDINATOR_SAGACTL_SHOW_H

#include "sagactl.h"

/* sagactl_show_run: sagactl show ID. Returns the exit status. */
int sagactl_show_run(sagactl_ctx *ctx, int argc, char **argv);

#endif /* COORDINATOR_SAGACTL_SHOW_H */
