-- imcd: the imc tables for SQLite.
--
-- Equal in effect to OpenSIPS's scripts/sqlite/standard-create.sql (the
-- version table) plus scripts/sqlite/imc-create.sql: same columns, types and
-- unique keys. Safe to run on a database that has some of it already:
-- nothing that exists is changed. SQLite does not enforce CHAR(64); imcd
-- refuses longer values itself.
--
-- imcd's one addition is the index imc_members_room_idx on imc_members(room),
-- which makes deleting a room's members an index lookup instead of a table
-- scan. OpenSIPS's imc module does not mind it.
--
--   sqlite3 /var/lib/imcd/imc.db < sql/sqlite/imc-create.sql
-- or let imcd do it: create_tables = yes (see docs/database.md).
-- imcd always creates the tables of its embedded default database itself.

CREATE TABLE IF NOT EXISTS version (
    table_name CHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_t_name_idx UNIQUE (table_name)
);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_rooms', 2 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_rooms');
CREATE TABLE IF NOT EXISTS imc_rooms (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name CHAR(64) NOT NULL,
    domain CHAR(64) NOT NULL,
    flag INTEGER NOT NULL,
    CONSTRAINT imc_rooms_name_domain_idx UNIQUE (name, domain)
);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_members', 2 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_members');
CREATE TABLE IF NOT EXISTS imc_members (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username CHAR(64) NOT NULL,
    domain CHAR(64) NOT NULL,
    room CHAR(64) NOT NULL,
    flag INTEGER NOT NULL,
    CONSTRAINT imc_members_account_room_idx UNIQUE (username, domain, room)
);

CREATE INDEX IF NOT EXISTS imc_members_room_idx ON imc_members (room);
