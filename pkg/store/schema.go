package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// tableSpec is one table as the schema code sees it.
type tableSpec struct {
	name    string
	probe   string // selects every column imcd uses, no rows
	version int
	create  func(string) []string
	script  string // the file in sql/<engine>/ that creates it
}

// Scripts in sql/<engine>/.
const (
	scriptIMC     = "imc-create.sql"
	scriptHistory = "imcd-history-create.sql"
	scriptEvents  = "imcd-events-create.sql"
	scriptMod     = "imcd-moderation-create.sql"
)

// tables lists the tables the configuration uses: the two imc tables,
// imcd's bans and moderation, and imcd's others when enabled.
func (db *DB) tables() []tableSpec {
	t := []tableSpec{
		{db.cfg.RoomsTable, db.q.probeRooms, roomsVersion, db.d.createRooms, scriptIMC},
		{db.cfg.MembersTable, db.q.probeMembers, membersVersion, db.d.createMembers, scriptIMC},
		{db.cfg.BansTable, db.mq.probeBans, bansVersion, db.d.createBans, scriptMod},
		{db.cfg.ModerationTable, db.mq.probeMod, modVersion, db.d.createMod, scriptMod},
	}
	if db.cfg.History {
		t = append(t,
			tableSpec{db.cfg.HistoryTable, db.hq.probeHistory, historyVersion, db.d.createHistory, scriptHistory},
			tableSpec{db.cfg.TopicsTable, db.hq.probeTopics, topicsVersion, db.d.createTopics, scriptHistory},
			tableSpec{db.cfg.MarksTable, db.hq.probeMarks, marksVersion, db.d.createMarks, scriptHistory})
	}
	if db.cfg.Events {
		t = append(t, tableSpec{db.cfg.EventsTable, db.eq.probe, eventsVersion, db.d.createEvents, scriptEvents})
	}
	return t
}

// checkSchema makes sure every table the configuration uses exists with the
// columns imcd uses and, where the version table has rows for them, that
// the versions are the ones imcd reads and writes.
func (db *DB) checkSchema(ctx context.Context) error {
	for _, t := range db.tables() {
		exists, err := db.tableExists(ctx, t)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("store: %w: table %q does not exist in %s; create it with create_tables = yes or sql/%s/%s",
				ErrNoTables, t.name, db.url, db.d.name, t.script)
		}
		if err := db.checkVersion(ctx, t); err != nil {
			return err
		}
	}
	if db.d.name == dburl.MySQL {
		db.warnNonTransactional(ctx)
	}
	db.warnNoRoomIndex(ctx)
	return nil
}

// warnNoRoomIndex logs a members table without an index on room (OpenSIPS's
// schema has none): deleting a room then scans the whole table, which on a
// large MySQL table takes longer than ApplyTimeout.
func (db *DB) warnNoRoomIndex(ctx context.Context) {
	var n int
	if err := db.db.GetContext(ctx, &n, sqlx.Rebind(db.d.bind, db.d.roomIndexed), db.cfg.MembersTable); err != nil {
		db.log.Debug("cannot read the members table's indexes", logkey.Err, err)
		return
	}
	if n == 0 {
		db.log.Warn("no index on the room column: destroying a room scans the whole members table, too slow when it is large; see docs/database.md, 'the room index'",
			logkey.Table, db.cfg.MembersTable)
	}
}

// tableExists probes the table with a query that selects every column imcd
// uses and no row. A missing table is (false, nil); a table without those
// columns, or a database that does not answer, is an error.
func (db *DB) tableExists(ctx context.Context, t tableSpec) (bool, error) {
	rows, err := db.db.QueryContext(ctx, t.probe)
	if err == nil {
		err = rows.Close()
	}
	switch {
	case err == nil:
		return true, nil
	case db.kind(err) == kindNoTable:
		return false, nil
	}
	err = db.wrap(err)
	if errors.Is(err, ErrUnavailable) {
		return false, fmt.Errorf("store: check table %q: %w", t.name, err)
	}
	return false, fmt.Errorf("store: table %q is not usable (imcd needs the columns of OpenSIPS's imc schema): %w", t.name, err)
}

// checkVersion compares the table's row in the version table, if there is
// one, with the version imcd supports. No version table or no row is fine:
// many operators create tables by hand.
func (db *DB) checkVersion(ctx context.Context, t tableSpec) error {
	var v int
	err := db.db.QueryRowxContext(ctx, db.q.version, t.name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		db.log.Debug("no version row", logkey.Table, t.name)
		return nil
	case err != nil && db.kind(err) == kindNoTable:
		db.log.Debug("no version table")
		return nil
	case err != nil:
		return fmt.Errorf("store: read the version of %q: %w", t.name, db.wrap(err))
	case v != t.version:
		return fmt.Errorf("store: %w: the version table gives %q version %d; imcd reads and writes version %d (sql/%s/%s)",
			ErrVersion, t.name, v, t.version, db.d.name, t.script)
	}
	return nil
}

// warnNonTransactional logs tables on a MySQL engine without transactions
// (MyISAM, which older OpenSIPS scripts created): there a change set that
// fails half-way cannot be rolled back.
func (db *DB) warnNonTransactional(ctx context.Context) {
	var rows []struct {
		Name   string         `db:"name"`
		Engine sql.NullString `db:"engine"`
	}
	var names []any
	for _, t := range db.tables() {
		names = append(names, t.name)
	}
	q := "SELECT table_name AS name, engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?" +
		strings.Repeat(", ?", len(names)-1) + ")"
	if err := db.db.SelectContext(ctx, &rows, q, names...); err != nil {
		db.log.Debug("cannot read the tables' engine", logkey.Err, err)
		return
	}
	for _, r := range rows {
		if !strings.EqualFold(r.Engine.String, "InnoDB") {
			db.log.Warn("table does not support transactions: a command that fails half-way may leave part of its changes; convert it with ALTER TABLE … ENGINE=InnoDB",
				logkey.Table, r.Name, logkey.Engine, r.Engine.String)
		}
	}
}

// CreateTables creates whatever is missing of the version table, the rooms
// and members tables, imcd's own tables where enabled, and their version
// rows. It is idempotent and never changes what exists. The definitions are
// those of sql/<engine>/imc-create.sql and imcd-*-create.sql.
func (db *DB) CreateTables(ctx context.Context) error {
	if _, err := db.db.ExecContext(ctx, db.d.createVersion); err != nil {
		// Another process may have created it at the same moment.
		if !db.versionTableExists(ctx) {
			return fmt.Errorf("store: create the version table: %w", db.wrap(err))
		}
	}
	for _, t := range db.tables() {
		exists, err := db.tableExists(ctx, t)
		if err != nil {
			return err
		}
		if !exists {
			if err := db.createTable(ctx, t); err != nil {
				return err
			}
		}
		if err := db.insertVersion(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// createTable runs t's DDL. Another imcd creating the same table at the
// same moment (PostgreSQL's CREATE TABLE IF NOT EXISTS can fail then) is
// no error: the table is there.
func (db *DB) createTable(ctx context.Context, t tableSpec) error {
	for _, stmt := range t.create(t.name) {
		if _, err := db.db.ExecContext(ctx, stmt); err != nil {
			if exists, _ := db.tableExists(ctx, t); exists {
				db.log.Debug("table created by someone else meanwhile", logkey.Table, t.name, logkey.Err, err)
				return nil
			}
			return fmt.Errorf("store: create table %q: %w", t.name, db.wrap(err))
		}
	}
	db.log.Info("table created", logkey.Table, t.name)
	return nil
}

func (db *DB) versionTableExists(ctx context.Context) bool {
	rows, err := db.db.QueryContext(ctx, "SELECT table_name, table_version FROM "+db.d.table("version")+" WHERE 1 = 0")
	if err != nil {
		return false
	}
	rows.Close()
	return true
}

func (db *DB) insertVersion(ctx context.Context, t tableSpec) error {
	q := sqlx.Rebind(db.d.bind, db.d.insertVersion)
	if _, err := db.db.ExecContext(ctx, q, t.name, t.version, t.name); err != nil {
		// A concurrent CreateTables may have inserted it first.
		var v int
		if db.db.QueryRowxContext(ctx, db.q.version, t.name).Scan(&v) == nil {
			return nil
		}
		return fmt.Errorf("store: insert the version row of %q: %w", t.name, db.wrap(err))
	}
	return nil
}
