package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// formatURL writes u back in db_url form, password included.
func formatURL(u *dburl.URL) string {
	esc := strings.NewReplacer("%", "%25", "@", "%40", "/", "%2F", ":", "%3A").Replace
	s := u.Scheme + "://"
	if u.User != "" {
		s += esc(u.User)
		if u.HasPassword {
			s += ":" + esc(u.Password)
		}
		s += "@"
	}
	switch {
	case u.Socket != "":
		s += "unix(" + u.Socket + ")"
	case strings.Contains(u.Host, ":"):
		s += "[" + u.Host + "]"
	default:
		s += u.Host
	}
	if u.Port != 0 {
		s += ":" + strconv.Itoa(u.Port)
	}
	s += "/" + u.Database
	if len(u.Params) > 0 {
		s += "?" + u.Params.Encode()
	}
	return s
}

// freshDatabase makes an empty database of the test's own (imcd_t_*, which
// the test user may create) and returns its URL.
func freshDatabase(t *testing.T, engine string) string {
	t.Helper()
	if engine == dburl.SQLite {
		return "sqlite://" + filepath.Join(t.TempDir(), "fresh.db")
	}
	admin, err := connect(context.Background(), Config{URL: engineURL(engine)})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "imcd_t_" + randomSuffix()
	if _, err := admin.db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := connect(context.Background(), Config{URL: engineURL(engine)})
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close()
		drop := "DROP DATABASE " + name
		if engine == dburl.Postgres {
			drop += " WITH (FORCE)"
		}
		if _, err := admin.db.Exec(drop); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, _ := dburl.Parse(engineURL(engine))
	u.Database = name
	return formatURL(u)
}

// runScript runs one of sql/<engine>/imc-create.sql statement by statement.
func runScript(t *testing.T, db *DB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.db.Exec(stmt); err != nil {
			t.Fatalf("%s: %s: %v", path, stmt, err)
		}
	}
}

// describe renders a table's columns and indexes, with its name replaced by
// "T", so that two tables' definitions can be compared.
func describe(t *testing.T, db *DB, table string) string {
	t.Helper()
	var qs []string
	switch db.Engine() {
	case dburl.MySQL:
		qs = []string{
			"SELECT CONCAT_WS(' ', column_name, column_type, is_nullable, COALESCE(column_default, '-'), extra) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
			"SELECT CONCAT_WS(' ', index_name, non_unique, column_name) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name, seq_in_index",
			"SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
		}
	case dburl.Postgres:
		qs = []string{
			"SELECT concat_ws(' ', column_name, data_type, character_maximum_length, is_nullable, column_default) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
			"SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname",
			"SELECT concat_ws(' ', maximum_value, cycle_option) FROM information_schema.sequences WHERE sequence_name = $1 || '_id_seq'",
		}
	default:
		qs = []string{
			`SELECT name || ' ' || type || ' ' || "notnull" || ' ' || COALESCE(dflt_value, '-') || ' ' || pk FROM pragma_table_info(?)`,
			`SELECT il.name || ' ' || il."unique" || ' ' || ii.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno`,
		}
	}
	var out []string
	for _, q := range qs {
		var rows []string
		if err := db.db.Select(&rows, q, table); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, rows...)
	}
	return strings.ReplaceAll(strings.Join(out, "\n"), table, "T")
}

// The scripts in sql/ make tables that imcd opens as they are, and that are
// the same as the ones CreateTables makes.
func TestSQLScripts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		url := freshDatabase(t, engine)
		raw, err := connect(context.Background(), Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		for _, name := range []string{scriptIMC, scriptMod, scriptHistory, scriptEvents} {
			script := filepath.Join("..", "..", "sql", engine, name)
			runScript(t, raw, script)
			runScript(t, raw, script) // idempotent
		}

		logs := &logBuffer{}
		db, err := Open(context.Background(), Config{URL: url, History: true, Events: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatalf("Open on the script's tables: %v", err)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("warnings on the script's tables:\n%s", logs)
		}
		defer db.Close()
		room := imc.URI{User: "r", Host: "h"}
		if err := db.Apply(context.Background(), []imc.Change{createRoom(room, 1), addMember(room, imc.URI{User: "a", Host: "h"}, 1)}); err != nil {
			t.Fatal(err)
		}
		if rooms, err := db.Load(context.Background()); err != nil || dump(rooms) != "sip:r@h flag=1: *a@h\n" {
			t.Errorf("Load = %s, %v", dump(rooms), err)
		}

		if _, err := db.AppendHistory(context.Background(), []HistoryLine{{Room: room, Seq: 1, Sender: "sip:a@h", ContentType: "text/plain", Body: []byte("hi")}}); err != nil {
			t.Errorf("AppendHistory on the script's tables: %v", err)
		}
		if applied, err := db.ApplyOnce(context.Background(), EventKey("c", "1", "t"), []imc.Change{deleteRoom(room)}); !applied || err != nil {
			t.Errorf("ApplyOnce on the script's tables = %v, %v", applied, err)
		}

		created, err := Open(context.Background(), Config{URL: url, RoomsTable: "imcx_rooms", MembersTable: "imcx_members",
			History: true, HistoryTable: "imcx_history", TopicsTable: "imcx_topics", MarksTable: "imcx_history_marks",
			Events: true, EventsTable: "imcx_events", BansTable: "imcx_bans", ModerationTable: "imcx_moderation", CreateTables: true})
		if err != nil {
			t.Fatal(err)
		}
		defer created.Close()
		for _, name := range []string{"rooms", "members", "bans", "moderation", "history", "topics", "history_marks", "events"} {
			script, code := describe(t, raw, "imc_"+name), describe(t, raw, "imcx_"+name)
			if script != code {
				t.Errorf("imc_%s from the script:\n%s\nfrom CreateTables:\n%s", name, script, code)
			}
			if !strings.Contains(script, "64") && name != "events" {
				t.Errorf("imc_%s: no 64-character columns in:\n%s", name, script)
			}
			want := 1
			if name == "rooms" || name == "members" {
				want = 2
			}
			for _, tb := range []string{"imc_" + name, "imcx_" + name} {
				var v int
				if err := raw.db.Get(&v, raw.db.Rebind("SELECT table_version FROM version WHERE table_name = ?"), tb); err != nil || v != want {
					t.Errorf("version of %s = %d, %v; want %d", tb, v, err, want)
				}
			}
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	f := func(cfg Config, want error, wantText ...string) {
		t.Helper()
		start := time.Now()
		db, err := Open(ctx, cfg)
		if err == nil {
			db.Close()
			t.Errorf("Open(%s): no error", Redacted(cfg.URL))
			return
		}
		if !errors.Is(err, want) {
			t.Errorf("Open(%s) = %v, want %v", Redacted(cfg.URL), err, want)
		}
		for _, w := range wantText {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%s) = %q, want it to say %q", Redacted(cfg.URL), err, w)
			}
		}
		if strings.Contains(err.Error(), "Secr3t") {
			t.Errorf("error shows the password: %v", err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("Open(%s) took %v", Redacted(cfg.URL), d)
		}
	}
	sqliteURL := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	f(Config{}, ErrBadURL, "empty")
	f(Config{URL: "mysql://u:Secr3t@h"}, ErrBadURL, "/database")
	f(Config{URL: "mysql://u:Secr3t/x@h:po/db"}, ErrBadURL)
	f(Config{URL: "redis://h/1"}, ErrBadURL, "redis")
	f(Config{URL: sqliteURL, RoomsTable: "rooms; DROP TABLE x"}, ErrBadConfig, "rooms; DROP")
	f(Config{URL: sqliteURL, RoomsTable: "same", MembersTable: "same"}, ErrBadConfig)
	f(Config{URL: sqliteURL}, ErrNoTables, `"imc_rooms"`, "create_tables = yes")

	// Nothing listens on a port we just closed: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f(Config{URL: fmt.Sprintf("mysql://imcd:Secr3t@127.0.0.1:%d/imcd_test", port)}, ErrUnavailable)
	f(Config{URL: fmt.Sprintf("postgres://imcd:Secr3t@127.0.0.1:%d/imcd_test", port)}, ErrUnavailable)
	f(Config{URL: "mysql://imcd:Secr3t@unix(/nonexistent/mysqld.sock)/imcd_test"}, ErrUnavailable)

	for _, engine := range []string{dburl.MySQL, dburl.Postgres} {
		t.Run(engine+"/wrong-password", func(t *testing.T) {
			needEngine(t, engine)
			u, _ := dburl.Parse(engineURL(engine))
			u.Password, u.HasPassword = "Secr3t", true
			if db, err := connect(ctx, Config{URL: formatURL(u)}); err == nil {
				db.Close()
				t.Skip("the server does not check passwords (trust authentication)")
			}
			f(Config{URL: formatURL(u)}, ErrUnavailable)
		})
	}
}

// Missing tables are reported with their name; a version row with another
// version is refused.
func TestOpenSchemaChecks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		cfg := testConfig(t, engine)
		_, err := Open(ctx, cfg)
		if !errors.Is(err, ErrNoTables) || !strings.Contains(err.Error(), cfg.RoomsTable) {
			t.Errorf("Open without tables = %v, want ErrNoTables naming %s", err, cfg.RoomsTable)
		}
		db := openWith(t, cfg)
		// CreateTables again changes nothing.
		if err := db.CreateTables(ctx); err != nil {
			t.Fatalf("CreateTables again: %v", err)
		}
		db.exec(t, "DROP TABLE {members}")
		_, err = Open(ctx, cfg)
		if !errors.Is(err, ErrNoTables) || !strings.Contains(err.Error(), cfg.MembersTable) {
			t.Errorf("Open without the members table = %v, want ErrNoTables naming %s", err, cfg.MembersTable)
		}
		if err := db.CreateTables(ctx); err != nil {
			t.Fatal(err)
		}
		db.exec(t, "UPDATE version SET table_version = 1 WHERE table_name = ?", cfg.RoomsTable)
		_, err = Open(ctx, cfg)
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 1") {
			t.Errorf("Open with version 1 = %v, want ErrVersion", err)
		}
		// No version row at all is fine: tables made by hand.
		db.exec(t, "DELETE FROM version WHERE table_name = ?", cfg.RoomsTable)
		db2, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open without a version row: %v", err)
		}
		db2.Close()
	})
}

// A table that lacks a column imcd uses is refused at Open, not at the
// first command.
func TestOpenWrongColumns(t *testing.T) {
	cfg := testConfig(t, dburl.SQLite)
	db := openWith(t, cfg)
	db.exec(t, "DROP TABLE {rooms}")
	db.exec(t, "CREATE TABLE {rooms} (id INTEGER PRIMARY KEY, name CHAR(64), domain CHAR(64))")
	_, err := Open(context.Background(), Config{URL: cfg.URL, RoomsTable: cfg.RoomsTable, MembersTable: cfg.MembersTable})
	if err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("Open = %v, want a 'not usable' error", err)
	}
}

// The embedded SQLite default lives in a directory that may not exist yet.
func TestSQLiteCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "imcd", "imc.db")
	db, err := Open(context.Background(), Config{URL: "sqlite://" + path, CreateTables: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
	var mode string
	if err := db.db.Get(&mode, "PRAGMA journal_mode"); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if db.Engine() != "sqlite" {
		t.Errorf("Engine = %q", db.Engine())
	}
}

// A members table without an index on room (OpenSIPS's own schema) is
// accepted, with a warning that destroying a room will scan it.
func TestRoomIndexWarning(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		if strings.Contains(db.logs.String(), "no index on the room column") {
			t.Errorf("warned about the index CreateTables made:\n%s", db.logs)
		}
		if engine == dburl.MySQL {
			db.exec(t, "DROP INDEX room_idx ON {members}")
		} else {
			db.exec(t, "DROP INDEX "+db.cfg.MembersTable+"_room_idx")
		}
		again := openWith(t, db.cfg)
		if !strings.Contains(again.logs.String(), "no index on the room column") {
			t.Errorf("no warning without the index:\n%s", again.logs)
		}
	})
}

// MyISAM tables (older OpenSIPS scripts) have no transactions: accepted,
// with a warning.
func TestMyISAMWarning(t *testing.T) {
	needEngine(t, dburl.MySQL)
	db := openTest(t, dburl.MySQL)
	if strings.Contains(db.logs.String(), "does not support transactions") {
		t.Errorf("warned about InnoDB tables:\n%s", db.logs)
	}
	db.exec(t, "ALTER TABLE {members} ENGINE=MyISAM")
	again := openWith(t, db.cfg)
	if logs := again.logs.String(); !strings.Contains(logs, "does not support transactions") || !strings.Contains(logs, db.cfg.MembersTable) {
		t.Errorf("no warning for a MyISAM table:\n%s", logs)
	}
}
