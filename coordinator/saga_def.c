/* SPDX-License-Identifier: MIT */
/*
 * saga_def: freeing and looking up definitions.
 */
#include <stdlib.h>
#include <string.h>

#include "saga_def.h"

const char *
saga_step_kind_name(saga_step_kind k)
{
	switch (k) {
	case SAGA_STEP_PIVOT:
		return ("pivot");
	case SAGA_STEP_RETRIABLE:
		return ("retriable");
	case SAGA_STEP_COMPENSATABLE:
		break;
	}
	return ("compensatable");
}

void
saga_def_free(saga_def *d)
{
	if (d == NULL) {
		return;
	}
	for (size_t i = 0; i < d->nsteps; i++) {
		free(d->steps[i].name);
		free(d->steps[i].participant);
		free(d->steps[i].action);
		free(d->steps[i].compensation);
	}
	free(d->steps);
	free(d->name);
	free(d->json);
	free(d->business_key);
	for (size_t i = 0; i < d->nredact; i++) {
		free(d->redact[i]);
	}
	free(d->redact);
	free(d);
}

void
saga_participant_def_free(saga_participant_def *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t i = 0; i < p->nendpoints; i++) {
		free(p->endpoints[i]);
	}
	free(p->endpoints);
	free(p->name);
	free(p->tls_ca);
	free(p->tls_cert);
	free(p->tls_key);
	free(p);
}

int
saga_def_step_find(const saga_def *d, const char *name)
{
	for (size_t i = 0; i < d->nsteps; i++) {
		if (strcmp(d->steps[i].name, name) == 0) {
			return ((int) i);
		}
	}
	return (-1);
}

bool
saga_def_redacts(const saga_def *d, const char *field, size_t len)
{
	for (size_t i = 0; d != NULL && i < d->nredact; i++) {
		if (strlen(d->redact[i]) == len &&
		    memcmp(d->redact[i], field, len) == 0) {
			return (true);
		}
	}
	return (false);
}
