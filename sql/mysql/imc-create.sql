-- imcd: the imc tables for MySQL / MariaDB.
--
-- Equal in effect to OpenSIPS's scripts/mysql/standard-create.sql (the
-- version table) plus scripts/mysql/imc-create.sql: same columns, types and
-- unique keys, on InnoDB (imcd commits each command in a transaction, which
-- MyISAM ignores). Safe to run on a database that has some of it already:
-- nothing that exists is changed.
--
-- imcd's one addition is the index room_idx on imc_members(room), which makes
-- deleting a room's members an index lookup instead of a table scan. OpenSIPS's
-- imc module does not mind it.
--
--   mysql -u root -p opensips < sql/mysql/imc-create.sql
-- or let imcd do it: create_tables = yes (see docs/database.md).

CREATE TABLE IF NOT EXISTS version (
    table_name CHAR(32) NOT NULL,
    table_version INT UNSIGNED DEFAULT 0 NOT NULL,
    CONSTRAINT t_name_idx UNIQUE (table_name)
) ENGINE=InnoDB;

INSERT INTO version (table_name, table_version)
    SELECT 'imc_rooms', 2 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_rooms');
CREATE TABLE IF NOT EXISTS imc_rooms (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    name CHAR(64) NOT NULL,
    domain CHAR(64) NOT NULL,
    flag INT(11) NOT NULL,
    CONSTRAINT name_domain_idx UNIQUE (name, domain)
) ENGINE=InnoDB;

INSERT INTO version (table_name, table_version)
    SELECT 'imc_members', 2 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM version WHERE table_name = 'imc_members');
CREATE TABLE IF NOT EXISTS imc_members (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    username CHAR(64) NOT NULL,
    domain CHAR(64) NOT NULL,
    room CHAR(64) NOT NULL,
    flag INT(11) NOT NULL,
    CONSTRAINT account_room_idx UNIQUE (username, domain, room),
    INDEX room_idx (room)
) ENGINE=InnoDB;
