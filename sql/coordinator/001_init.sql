-- SPDX-License-Identifier: MIT
--
-- The coordinator's saga log: definitions, instances, start keys and the
-- append-only event log. Every key holds the saga id (or is the start key
-- itself) so that the log can later be partitioned by saga id.

-- Saga definitions as loaded from YAML. A saga instance pins the version it
-- started with; a changed definition gets the next version.
CREATE TABLE saga_definition (
	name         text        NOT NULL,
	version      integer     NOT NULL CHECK (version > 0),
	content_hash text        NOT NULL,
	definition   jsonb       NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, version),
	UNIQUE (name, content_hash)
);

-- One row per saga: its current state. The history is in saga_event.
CREATE TABLE saga_instance (
	id              uuid        NOT NULL PRIMARY KEY, -- UUIDv7 from sagad
	saga_name       text        NOT NULL,
	saga_version    integer     NOT NULL,
	state           text        NOT NULL CHECK (state IN ('RUNNING',
	                    'COMPENSATING', 'COMPLETED', 'COMPENSATED',
	                    'FAILED', 'RESOLVED')),
	current_step    integer     NOT NULL DEFAULT 0,
	-- attempt of the current step (or compensation), from 1; 0 = none yet
	attempt         integer     NOT NULL DEFAULT 0,
	-- the attempt before the current phase began (0, or where an
	-- operator's retry restarted the policy's attempt budget)
	phase_attempt0  integer     NOT NULL DEFAULT 0,
	-- highest step index with an attempt sent; -1 = none
	max_sent_step   integer     NOT NULL DEFAULT -1,
	-- when the current step (or its compensation) began: the start of
	-- the compensation_timeout budget
	phase_started_at timestamptz,
	-- msgpack map {"input": {...}, "steps": {"<step>": {...}}}
	context         bytea       NOT NULL,
	business_key    text,
	traceparent     text,
	last_error      text,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	deadline_at     timestamptz,
	-- NULL while the current attempt is in flight (or none is due);
	-- else when the next attempt is sent
	next_attempt_at timestamptz,
	-- last sequence number used in saga_event for this saga
	event_seq       integer     NOT NULL DEFAULT 0,
	-- several coordinators: the owning instance, its lease and the epoch
	-- that fences writes of an instance that lost the lease
	owner           text,
	lease_until     timestamptz,
	epoch           bigint      NOT NULL DEFAULT 0,
	FOREIGN KEY (saga_name, saga_version)
	    REFERENCES saga_definition (name, version)
);

CREATE INDEX saga_instance_state_idx
    ON saga_instance (state, updated_at DESC);
CREATE INDEX saga_instance_name_idx
    ON saga_instance (saga_name, created_at DESC);
CREATE INDEX saga_instance_business_key_idx
    ON saga_instance (business_key, created_at DESC)
    WHERE business_key IS NOT NULL;
-- Unfinished sagas: what recovery loads and what leases cover.
CREATE INDEX saga_instance_active_idx
    ON saga_instance (next_attempt_at)
    WHERE state IN ('RUNNING', 'COMPENSATING');

-- Idempotency keys of start requests. The same key with a different request
-- (saga name or input) is a conflict, not a silent duplicate.
CREATE TABLE saga_start_key (
	key          text        NOT NULL PRIMARY KEY,
	saga_id      uuid        NOT NULL REFERENCES saga_instance (id)
	                             ON DELETE CASCADE,
	request_hash bytea       NOT NULL, -- sha256 of saga name and input
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saga_start_key_saga_idx ON saga_start_key (saga_id);

-- The append-only history of every saga.
CREATE TABLE saga_event (
	saga_id     uuid        NOT NULL,
	seq         integer     NOT NULL,
	at          timestamptz NOT NULL,
	step        integer,            -- NULL for saga-level events
	kind        smallint,           -- 0 action, 1 compensation
	attempt     integer,
	event       text        NOT NULL, -- 'saga_started', 'step_sent', ...
	outcome     text,               -- 'ok', 'failed', 'retry', 'timeout'
	output      bytea,              -- msgpack map of an ok reply
	error       text,
	duration_us bigint,
	PRIMARY KEY (saga_id, seq)
);
