-- imcd: the history, topic and catch-up tables for SQLite.
--
-- imcd's own tables, beside OpenSIPS's imc_rooms and imc_members (which they
-- never alter). Needed only with history = on (see docs/database.md,
-- "history tables"). Safe to run on a database that has some of it already:
-- nothing that exists is changed. Run sql/sqlite/imc-create.sql first (it
-- creates the version table).
--
--   sqlite3 /var/lib/imcd/imc.db < sql/sqlite/imcd-history-create.sql
-- or let imcd do it: create_tables = yes.

INSERT INTO version (table_name, table_version)
    SELECT 'imc_history', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_history');
CREATE TABLE IF NOT EXISTS imc_history (
    id INTEGER PRIMARY KEY NOT NULL,
    room VARCHAR(64) NOT NULL,
    seq BIGINT NOT NULL,
    kind SMALLINT DEFAULT 0 NOT NULL,
    sender VARCHAR(255) NOT NULL,
    time_ms BIGINT NOT NULL,
    content_type VARCHAR(255) NOT NULL,
    body BLOB NOT NULL,
    CONSTRAINT imc_history_room_seq_idx UNIQUE (room, seq)
);

CREATE INDEX IF NOT EXISTS imc_history_time_idx ON imc_history (time_ms);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_topics', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_topics');
CREATE TABLE IF NOT EXISTS imc_topics (
    room VARCHAR(64) PRIMARY KEY NOT NULL,
    topic BLOB NOT NULL,
    set_by VARCHAR(255) NOT NULL,
    time_ms BIGINT NOT NULL
);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_history_marks', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_history_marks');
CREATE TABLE IF NOT EXISTS imc_history_marks (
    room VARCHAR(64) NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (room, username, domain)
);
