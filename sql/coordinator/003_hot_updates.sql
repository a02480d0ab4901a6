-- SPDX-License-Identifier: MIT
--
-- A saga's row is rewritten at every transition. PostgreSQL rewrites a row
-- in place on its page, a heap-only tuple (HOT) that adds no entry to any
-- index, only when no indexed column changes and the page has room. Up to
-- 002 every transition changed two indexed columns: updated_at (in
-- saga_instance_state_idx) and lease_until (renewed by every write), and
-- so added an entry to each of saga_instance's seven indexes.
--
-- From here:
-- - the state index is on (state, created_at), the order sagactl list
--   shows;
-- - sagactl purge finds finished sagas by finished_at, set once, by the
--   write that ends the saga (COMPLETED, COMPENSATED or RESOLVED);
-- - a write renews the saga's lease only when less of it is left than the
--   heartbeat leaves (saga_store.c), so that most writes leave lease_until
--   as it was;
-- - new pages keep 30% free for the rows' new versions.
-- A transition that keeps the saga's state and schedules no retry
-- (next_attempt_at) is then a HOT update.

ALTER TABLE saga_instance ADD COLUMN finished_at timestamptz;
-- The time a finished saga ended is its last update.
UPDATE saga_instance SET finished_at = updated_at
    WHERE state IN ('COMPLETED', 'COMPENSATED', 'RESOLVED');

DROP INDEX saga_instance_state_idx;
CREATE INDEX saga_instance_state_idx
    ON saga_instance (state, created_at DESC);
CREATE INDEX saga_instance_finished_idx
    ON saga_instance (finished_at)
    WHERE finished_at IS NOT NULL;
-- Finished sagas without finished_at: ended by a sagad older than this
-- migration still writing to the log (a rolling upgrade). sagactl purge
-- finds them here and gives them the time of their last update. Empty
-- otherwise; its columns change only when a saga ends, which is not a HOT
-- update anyway.
CREATE INDEX saga_instance_unstamped_idx
    ON saga_instance (id)
    WHERE finished_at IS NULL
      AND state IN ('COMPLETED', 'COMPENSATED', 'RESOLVED');

ALTER TABLE saga_instance SET (fillfactor = 70);
