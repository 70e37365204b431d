package store

import (
	"database/sql"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// connectTimeout bounds dialing and logging in, so that a dead database
// fails a call fast instead of waiting for the kernel's TCP timeouts.
const connectTimeout = 3 * time.Second

// errKind is what an error from the driver means to the store.
type errKind uint8

const (
	kindOther       errKind = iota // a bug, a schema problem: reported as is
	kindUnavailable                // connection lost, refused, timed out, server going away
	kindBusy                       // deadlock, lock wait, serialisation failure: retry may succeed
	kindConflict                   // unique key taken
	kindTooLong                    // value wider than its column
	kindNoTable                    // table does not exist
)

// dialect is everything that differs between the SQL engines.
type dialect struct {
	// name is what Engine returns.
	name string
	// driver names the driver for sqlx.NewDb. The pools are built from
	// connectors, not from database/sql's registry of names.
	driver string
	// bind is the sqlx placeholder style the shared queries are rebound to.
	bind int
	// open builds the connection pool for u; it does not dial yet.
	open func(u *dburl.URL, log *slog.Logger) (*sql.DB, error)
	// table quotes a (validated) table name. MySQL quotes with backticks
	// like OpenSIPS's db_mysql; PostgreSQL leaves names unquoted so they
	// fold to lower case as they do for OpenSIPS's db_postgres.
	table func(name string) string
	// foldEq returns a case-insensitive "col = ?" for the fallback match of
	// rows written with other letter case; "" where "=" already ignores
	// case (MySQL's *_ci collations).
	foldEq func(col string) string
	// txOptions are the options of Apply's transactions.
	txOptions *sql.TxOptions
	// snapshot are the options of a transaction that reads several tables
	// as of one moment (LoadRooms).
	snapshot *sql.TxOptions
	// classify says what a driver error means.
	classify func(err error) errKind
	// createVersion, createRooms and createMembers are the DDL of
	// CreateTables, equal in effect to the scripts in sql/.
	createVersion string
	createRooms   func(table string) []string
	createMembers func(table string) []string
	// createHistory, createTopics, createMarks and createEvents are the
	// DDL of imcd's own tables (sql/<engine>/imcd-*-create.sql).
	createHistory func(table string) []string
	createTopics  func(table string) []string
	createMarks   func(table string) []string
	createEvents  func(table string) []string
	// createBans and createMod are the DDL of the bans and moderation
	// tables (sql/<engine>/imcd-moderation-create.sql).
	createBans func(table string) []string
	createMod  func(table string) []string
	// insertIgnore starts an INSERT that skips rows whose unique key is
	// taken; ignoreSuffix(cols) ends it (cols: the unique key's columns).
	insertIgnore string
	ignoreSuffix func(cols string) string
	// upsertSuffix ends an INSERT so that a row whose key (cols) is taken
	// gets the new values of set instead.
	upsertSuffix func(key string, set ...string) string
	// deleteSome deletes at most "?" rows (the last argument) of table
	// matching where, the first ones in order; id is a column that
	// identifies a row.
	deleteSome func(table, id, where, order string) string
	// insertVersion inserts (table_name, table_version) unless a row for the
	// name exists; arguments: name, version, name.
	insertVersion string
	// roomIndexed counts the indexes whose first column is "room" on the
	// table given as the one argument.
	roomIndexed string
}

func dialectFor(scheme string) *dialect {
	switch scheme {
	case dburl.MySQL:
		return mysqlDialect()
	case dburl.Postgres:
		return postgresDialect()
	default:
		return sqliteDialect()
	}
}

// queries are the statements of one store, built once at Open with the
// configured table names and the dialect's placeholders.
type queries struct {
	loadRooms, loadMembers, loadMembersRange, memberIDSpan string

	insertRoom, updateRoom, deleteRoom, deleteRoomMembers string
	insertMember, updateMember, deleteMember              string

	// Case-insensitive fallbacks; "" when the exact statements already
	// ignore case.
	updateRoomFold, deleteRoomFold, deleteRoomMembersFold string
	updateMemberFold, deleteMemberFold                    string

	probeRooms, probeMembers, version string
}

func buildQueries(d *dialect, rooms, members string) queries {
	r, m := d.table(rooms), d.table(members)
	re := func(q string) string { return sqlx.Rebind(d.bind, q) }
	q := queries{
		// No id in the select list: one column less per row to decode, and
		// the unique keys identify a row in the log as well as the id.
		loadRooms:   "SELECT name, domain, flag FROM " + r + " ORDER BY id",
		loadMembers: "SELECT username, domain, room, flag FROM " + m + " ORDER BY id",
		loadMembersRange: re("SELECT username, domain, room, flag FROM " + m +
			" WHERE id >= ? AND id < ? ORDER BY id"),
		memberIDSpan: "SELECT MIN(id), MAX(id) FROM " + m,

		insertRoom:        re("INSERT INTO " + r + " (name, domain, flag) VALUES (?, ?, ?)"),
		updateRoom:        re("UPDATE " + r + " SET flag = ? WHERE name = ? AND domain = ?"),
		deleteRoom:        re("DELETE FROM " + r + " WHERE name = ? AND domain = ?"),
		deleteRoomMembers: re("DELETE FROM " + m + " WHERE room = ?"),
		insertMember:      re("INSERT INTO " + m + " (username, domain, room, flag) VALUES (?, ?, ?, ?)"),
		updateMember:      re("UPDATE " + m + " SET flag = ? WHERE username = ? AND domain = ? AND room = ?"),
		deleteMember:      re("DELETE FROM " + m + " WHERE username = ? AND domain = ? AND room = ?"),

		probeRooms:   "SELECT id, name, domain, flag FROM " + r + " WHERE 1 = 0",
		probeMembers: "SELECT id, username, domain, room, flag FROM " + m + " WHERE 1 = 0",
		version:      re("SELECT table_version FROM " + d.table("version") + " WHERE table_name = ?"),
	}
	if d.foldEq != nil {
		f := d.foldEq
		q.updateRoomFold = re("UPDATE " + r + " SET flag = ? WHERE " + f("name") + " AND " + f("domain"))
		q.deleteRoomFold = re("DELETE FROM " + r + " WHERE " + f("name") + " AND " + f("domain"))
		q.deleteRoomMembersFold = re("DELETE FROM " + m + " WHERE " + f("room"))
		q.updateMemberFold = re("UPDATE " + m + " SET flag = ? WHERE " + f("username") + " AND " + f("domain") + " AND " + f("room"))
		q.deleteMemberFold = re("DELETE FROM " + m + " WHERE " + f("username") + " AND " + f("domain") + " AND " + f("room"))
	}
	return q
}

// rebind turns the '?' placeholders of q into d's.
func rebind(d *dialect, q string) string { return sqlx.Rebind(d.bind, q) }
