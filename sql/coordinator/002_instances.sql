-- SPDX-License-Identifier: MIT
--
-- Several sagad instances on one database: each unfinished saga is owned by
-- one live instance through a lease (saga_instance.owner, lease_until,
-- epoch, from 001); writes are fenced by the epoch; expired leases are
-- taken over.

-- The instances, with their heartbeats (sagactl instances).
CREATE TABLE saga_coordinator (
	instance_id  text        NOT NULL PRIMARY KEY,
	host         text,
	pid          integer,
	listen       text,
	started_at   timestamptz NOT NULL DEFAULT now(),
	heartbeat_at timestamptz NOT NULL DEFAULT now(),
	stopped_at   timestamptz
);

-- Which instance wrote each event: the audit trail of ownership, and what
-- the fencing tests check.
ALTER TABLE saga_event ADD COLUMN writer text;

-- A cancel asked on an instance that does not own the saga: the owner
-- finds it here and carries it out (the note is the operator's).
ALTER TABLE saga_instance ADD COLUMN cancel_note text;

-- Expired leases are found through this index, without a look-back
-- window; renewals and cancels by owner through the next two.
CREATE INDEX saga_instance_lease_idx ON saga_instance (lease_until)
    WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE INDEX saga_instance_owner_idx ON saga_instance (owner)
    WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE INDEX saga_instance_cancel_idx ON saga_instance (owner)
    WHERE cancel_note IS NOT NULL;
