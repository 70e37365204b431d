-- imcd: the applied-once events table for MySQL / MariaDB.
--
-- imcd's own table, needed only when several imcd consume the same broker
-- queues (see docs/database.md, "events table"). Safe to run again. Run
-- sql/mysql/imc-create.sql first (it creates the version table).
--
--   mysql -u root -p opensips < sql/mysql/imcd-events-create.sql
-- or let imcd do it: create_tables = yes.

INSERT INTO version (table_name, table_version)
    SELECT 'imc_events', 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_events');
CREATE TABLE IF NOT EXISTS imc_events (
    event_key CHAR(32) PRIMARY KEY NOT NULL,
    claim BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    INDEX time_idx (time_ms)
) ENGINE=InnoDB;
