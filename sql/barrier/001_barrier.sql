-- SPDX-License-Identifier: MIT
--
-- The idempotency barrier of a participant (DESIGN.md, invariant 2),
-- applied by the participant library to the participant's own database
-- (saga_participant_migrate). One row per (saga id, step, kind) that this
-- participant has seen, written in the same local transaction as the
-- handler's business change:
--   kind 0 (action):       'ok' (its output), 'failed' (the business
--                          reason), or 'aborted' (written by a compensation
--                          that arrived first: the action never ran and
--                          will be refused);
--   kind 1 (compensation): 'ok' (its output; a null compensation has none).
-- A compensation's business failure and every retry commit nothing, so
-- they leave no row and run again next time.

CREATE TABLE saga_barrier (
	saga_id    uuid        NOT NULL,
	step       integer     NOT NULL CHECK (step >= 0),
	kind       smallint    NOT NULL CHECK (kind IN (0, 1)),
	outcome    text        NOT NULL
	               CHECK (outcome IN ('ok', 'failed', 'aborted')),
	-- msgpack map, the step's output (outcome ok); NULL means {}
	output     bytea,
	-- why it failed (outcome failed)
	error      text,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (saga_id, step, kind),
	-- only actions fail or are aborted
	CHECK (kind = 0 OR outcome = 'ok')
);

-- The retention purge walks rows by age.
CREATE INDEX saga_barrier_created_idx ON saga_barrier (created_at);
