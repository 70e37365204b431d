-- imcd: the applied-once events table for SQLite.
--
-- imcd's own table, needed only when several imcd consume the same broker
-- queues (see docs/database.md, "events table"). Safe to run again. Run
-- sql/sqlite/imc-create.sql first (it creates the version table).
--
--   sqlite3 /var/lib/imcd/imc.db < sql/sqlite/imcd-events-create.sql
-- or let imcd do it: create_tables = yes.

INSERT INTO version (table_name, table_version)
    SELECT 'imc_events', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_events');
CREATE TABLE IF NOT EXISTS imc_events (
    event_key CHAR(32) PRIMARY KEY NOT NULL,
    claim BIGINT NOT NULL,
    time_ms BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS imc_events_time_idx ON imc_events (time_ms);
