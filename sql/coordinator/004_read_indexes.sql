-- SPDX-License-Identifier: MIT
--
-- sagactl list prints the newest sagas first and stops at --limit; with
-- --since, those started since a time; sagactl stats --since reads the
-- events since a time. Up to 003, without --state (or --saga, --key),
-- there was no index to read for either: each read its whole table, for a
-- time that grew with the log (on a log of a million sagas and six
-- million events: list 219 ms, stats --since 3h 281 ms; 0.29 ms and
-- 23 ms with these indexes).
--
-- saga_instance (created_at, id): list's order, ties in created_at by
-- id, so that one index scan, backwards, gives list its rows in the order
-- it prints them and stops at the limit. Neither column ever changes, so
-- that the HOT updates of 003 stay HOT; a new saga adds one entry, at the
-- right edge of the index. The ids alone cannot give that order: sagad's
-- are UUIDv7, whose first 48 bits are the start's Unix ms, but nothing
-- makes a row's id follow its created_at (rows copied or imported, as
-- bench.sh --prefill's, sort before every real saga with a recent
-- created_at).
--
-- saga_event (at), BRIN: events are appended in about the order of their
-- time, so that each range of 128 pages holds a narrow range of times. The
-- index is a few pages for millions of events, and an event's insertion
-- costs it next to nothing (pgbench inserting events: 5 WAL bytes per
-- event, where a B-tree on at costs 67, for several events per saga).
-- autosummarize: a range is summarized once it is full, not at the next
-- VACUUM; until then a query reads it whole.
--
-- What both cost sagad (scripts/bench.sh --mode noop, C=64, 5,000 sagas,
-- three runs each way): WAL per saga 6,228 -> 6,433 bytes (+3.3%);
-- sagas/s varied more between runs (2,585 to 3,125 without, 2,419 to
-- 2,995 with) than between the two.
--
-- IF NOT EXISTS: on a big log these can be built beforehand with CREATE
-- INDEX CONCURRENTLY and the same names, without the write lock that
-- this migration takes while it builds them (docs/operations.md).

CREATE INDEX IF NOT EXISTS saga_instance_created_idx
    ON saga_instance (created_at, id);
CREATE INDEX IF NOT EXISTS saga_event_at_idx
    ON saga_event USING brin (at) WITH (autosummarize = on);
