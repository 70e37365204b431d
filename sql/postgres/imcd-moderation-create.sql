-- imcd: the bans and moderation tables for PostgreSQL.
--
-- imcd's own tables, beside OpenSIPS's imc_rooms and imc_members (which they
-- never alter: a ban deletes the member's row, and OpenSIPS's imc module
-- reads every bit of the flag columns, so none is borrowed). imcd needs them
-- whatever its configuration (see docs/database.md, "bans and moderation").
-- Safe to run on a database that has some of it already: nothing that
-- exists is changed. Run sql/postgres/imc-create.sql first (it creates the
-- version table).
--
-- imc_bans: one row per user kept out of a room; room is the room's URI as
-- imc_members.room spells it, reason the ban's reason as given (bytes).
-- imc_moderation: a row with username and domain empty says the room is
-- moderated; a row naming a member gives that member voice.
--
--   psql -h HOST -U opensips opensips -f sql/postgres/imcd-moderation-create.sql
-- or let imcd do it: create_tables = yes.

INSERT INTO version (table_name, table_version)
    SELECT 'imc_bans', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_bans');
CREATE TABLE IF NOT EXISTS imc_bans (
    room VARCHAR(64) NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    reason BYTEA NOT NULL,
    banned_by VARCHAR(255) NOT NULL,
    time_ms BIGINT NOT NULL,
    PRIMARY KEY (room, username, domain)
);

INSERT INTO version (table_name, table_version)
    SELECT 'imc_moderation', 1 WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_moderation');
CREATE TABLE IF NOT EXISTS imc_moderation (
    room VARCHAR(64) NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    PRIMARY KEY (room, username, domain)
);
