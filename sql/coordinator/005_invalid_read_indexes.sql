-- SPDX-License-Identifier: MIT
--
-- Migration 004 creates its two indexes IF NOT EXISTS, so that on a big
-- log they can be built beforehand with CREATE INDEX CONCURRENTLY under
-- the same names (docs/operations.md). A concurrent build that fails or
-- is cancelled (a statement_timeout, a deadlock, a unique violation
-- elsewhere, an operator's Ctrl-C) leaves its index behind, marked
-- invalid: it is kept up to date by every write but never read. 004 then
-- found the name taken and recorded itself as applied, and sagactl list
-- went back to reading the whole table. Such an index is dropped here and
-- built again; a valid one is left as it is. DROP INDEX takes an ACCESS
-- EXCLUSIVE lock on the table, held until this migration commits, so
-- that the rebuild then blocks reads of the table too, not only writes
-- (docs/operations.md: drop it CONCURRENTLY and build it again before
-- migrating, on a big log).

DO $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT c.relname
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		WHERE NOT i.indisvalid
		  AND c.relnamespace = (SELECT oid FROM pg_namespace
		                        WHERE nspname = current_schema())
		  AND c.relname IN ('saga_instance_created_idx',
		                    'saga_event_at_idx')
	LOOP
		RAISE NOTICE 'index % is invalid (a CREATE INDEX '
		    'CONCURRENTLY that did not finish): built again', r.relname;
		EXECUTE format('DROP INDEX %I', r.relname);
	END LOOP;
END $$;

CREATE INDEX IF NOT EXISTS saga_instance_created_idx
    ON saga_instance (created_at, id);
CREATE INDEX IF NOT EXISTS saga_event_at_idx
    ON saga_event USING brin (at) WITH (autosummarize = on);
