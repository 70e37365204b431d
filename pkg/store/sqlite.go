package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// sqliteBusyTimeoutMS is how long a statement waits for another process's
// lock on the file (an operator's sqlite3 shell, a backup) before failing.
const sqliteBusyTimeoutMS = 1500

func sqliteDialect() *dialect {
	return (&dialect{
		name:     dburl.SQLite,
		driver:   "sqlite",
		bind:     sqlx.QUESTION,
		open:     openSQLite,
		table:    func(n string) string { return n },
		foldEq:   func(col string) string { return col + " = ? COLLATE NOCASE" },
		classify: classifySQLite,
		// The same definitions as OpenSIPS's scripts/sqlite/*-create.sql.
		createVersion: "CREATE TABLE IF NOT EXISTS version (\n" +
			"    table_name CHAR(32) NOT NULL,\n" +
			"    table_version INTEGER DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT version_t_name_idx UNIQUE (table_name)\n" +
			")",
		createRooms: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
				"    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,\n" +
				"    name CHAR(64) NOT NULL,\n" +
				"    domain CHAR(64) NOT NULL,\n" +
				"    flag INTEGER NOT NULL,\n" +
				"    CONSTRAINT " + t + "_name_domain_idx UNIQUE (name, domain)\n" +
				")"}
		},
		createMembers: func(t string) []string {
			return []string{
				"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
					"    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,\n" +
					"    username CHAR(64) NOT NULL,\n" +
					"    domain CHAR(64) NOT NULL,\n" +
					"    room CHAR(64) NOT NULL,\n" +
					"    flag INTEGER NOT NULL,\n" +
					"    CONSTRAINT " + t + "_account_room_idx UNIQUE (username, domain, room)\n" +
					")",
				"CREATE INDEX IF NOT EXISTS " + t + "_room_idx ON " + t + " (room)",
			}
		},
		roomIndexed: "SELECT COUNT(*) FROM pragma_index_list(?) il, pragma_index_info(il.name) ii " +
			"WHERE ii.seqno = 0 AND ii.name = 'room'",
		// The history's id is a plain rowid, without AUTOINCREMENT's extra
		// write per row.
	}).standardSQL("INTEGER", "BLOB")
}

func openSQLite(u *dburl.URL, _ *slog.Logger) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(u.Database), 0o750); err != nil {
		return nil, fmt.Errorf("%w: create the directory of the SQLite file: %v", ErrUnavailable, err)
	}
	// WAL: readers do not block the writer. synchronous=FULL: a commit is on
	// disk before Apply returns, so not even a power cut loses a change a
	// user was told about. foreign_keys off, as OpenSIPS's tables have none.
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way for want of it.
	dsn := u.Database +
		fmt.Sprintf("?_pragma=busy_timeout(%d)", sqliteBusyTimeoutMS) +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(0)&_txlock=immediate"
	return sql.OpenDB(sqliteConnector{dsn: dsn, driver: &sqlite.Driver{}}), nil
}

// sqliteConnector opens connections with a driver value of the store's own
// rather than the one registered under "sqlite" in database/sql's global
// table, like the MySQL and PostgreSQL pools.
type sqliteConnector struct {
	dsn    string
	driver *sqlite.Driver
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) { return c.driver.Open(c.dsn) }
func (c sqliteConnector) Driver() driver.Driver                        { return c.driver }

// SQLite primary result codes (the low byte of an extended code).
const (
	sqliteError      = 1
	sqlitePerm       = 3
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteNoMem      = 7
	sqliteReadOnly   = 8
	sqliteIOErr      = 10
	sqliteFull       = 13
	sqliteCantOpen   = 14
	sqliteProtocol   = 15
	sqliteConstraint = 19
	sqliteTooBig     = 18

	sqliteConstraintPrimaryKey = sqliteConstraint | 6<<8
	sqliteConstraintUnique     = sqliteConstraint | 8<<8
)

func classifySQLite(err error) errKind {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return classifyCommon(err)
	}
	switch code := se.Code(); code & 0xff {
	case sqliteConstraint:
		if code == sqliteConstraintUnique || code == sqliteConstraintPrimaryKey {
			return kindConflict
		}
	case sqliteBusy, sqliteLocked:
		return kindBusy
	case sqlitePerm, sqliteNoMem, sqliteReadOnly, sqliteIOErr, sqliteFull, sqliteCantOpen, sqliteProtocol:
		return kindUnavailable
	case sqliteTooBig:
		return kindTooLong
	case sqliteError:
		if strings.Contains(se.Error(), "no such table") {
			return kindNoTable
		}
	}
	return kindOther
}
