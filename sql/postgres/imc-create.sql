-- imcd: the imc tables for PostgreSQL.
--
-- Equal in effect to OpenSIPS's scripts/postgres/standard-create.sql (the
-- version table) plus scripts/postgres/imc-create.sql: same columns, types,
-- unique keys and sequence limits. Safe to run on a database that has some of
-- it already: nothing that exists is changed, except that the id sequences
-- get OpenSIPS's limits again.
--
-- imcd's one addition is the index imc_members_room_idx on imc_members(room),
-- which makes deleting a room's members an index lookup instead of a table
-- scan. OpenSIPS's imc module does not mind it.
--
--   psql -h HOST -U opensips opensips -f sql/postgres/imc-create.sql
-- or let imcd do it: create_tables = yes (see docs/database.md).

CREATE TABLE IF NOT EXISTS version (
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_t_name_idx UNIQUE (table_name)
);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_rooms', 2 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_rooms');
CREATE TABLE IF NOT EXISTS imc_rooms (
    id SERIAL PRIMARY KEY NOT NULL,
    name VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    flag INTEGER NOT NULL,
    CONSTRAINT imc_rooms_name_domain_idx UNIQUE (name, domain)
);

ALTER SEQUENCE imc_rooms_id_seq MAXVALUE 2147483647 CYCLE;

INSERT INTO version (table_name, table_version)
    SELECT 'imc_members', 2 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_members');
CREATE TABLE IF NOT EXISTS imc_members (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    room VARCHAR(64) NOT NULL,
    flag INTEGER NOT NULL,
    CONSTRAINT imc_members_account_room_idx UNIQUE (username, domain, room)
);

ALTER SEQUENCE imc_members_id_seq MAXVALUE 2147483647 CYCLE;
CREATE INDEX IF NOT EXISTS imc_members_room_idx ON imc_members (room);
