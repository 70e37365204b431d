package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// The databases the tests use are internal/testdb's. Each test makes
// tables of its own (random suffix) and drops them, since other packages'
// tests share these servers.

func engineURL(name string) string { return testdb.URL(name) }

// needEngine skips (or, with IMCD_TEST_REQUIRE_DB=1, fails) when a server
// database is not reachable.
func needEngine(t testing.TB, name string) {
	t.Helper()
	if name != dburl.SQLite {
		testdb.Need(t, name)
	}
}

var allEngines = []string{dburl.SQLite, dburl.MySQL, dburl.Postgres}

// forEachEngine runs fn as a parallel subtest per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range allEngines {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			needEngine(t, e)
			fn(t, e)
		})
	}
}

func randomSuffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// logBuffer collects a store's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testDB is a store on tables of the test's own.
type testDB struct {
	*DB
	cfg  Config
	logs *logBuffer
}

// testConfig returns a configuration for engine with fresh tables (and for
// SQLite a fresh file), whose tables are dropped when the test ends. The
// history and events tables are named too, for tests that enable them.
func testConfig(t testing.TB, engine string) Config {
	t.Helper()
	url := engineURL(engine)
	if engine == dburl.SQLite {
		url = "sqlite://" + filepath.Join(t.TempDir(), "imc.db")
	}
	tb := testdb.NewTables(t, engine, "imc_history", "imc_topics", "imc_marks", "imc_events", "imc_bans", "imc_moderation")
	return Config{URL: url, RoomsTable: tb.Rooms, MembersTable: tb.Members,
		HistoryTable: tb.Extra[0], TopicsTable: tb.Extra[1], MarksTable: tb.Extra[2], EventsTable: tb.Extra[3],
		BansTable: tb.Extra[4], ModerationTable: tb.Extra[5], ApplyTimeout: 5 * time.Second}
}

// historyConfig is testConfig with the history and events tables on.
func historyConfig(t testing.TB, engine string) Config {
	cfg := testConfig(t, engine)
	cfg.History, cfg.Events = true, true
	return cfg
}

// openTest opens a store on fresh, created tables.
func openTest(t testing.TB, engine string) *testDB {
	t.Helper()
	cfg := testConfig(t, engine)
	return openWith(t, cfg)
}

func openWith(t testing.TB, cfg Config) *testDB {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.CreateTables = true
	db, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &testDB{DB: db, cfg: cfg, logs: logs}
}

// sql rewrites a test's SQL for the store: {rooms}, {members}, {history},
// {topics}, {marks}, {events}, {bans} and {moderation} name the test's
// tables, and '?' placeholders become the engine's.
func (db *testDB) sql(q string) string {
	return db.db.Rebind(strings.NewReplacer("{rooms}", db.d.table(db.cfg.RoomsTable), "{members}", db.d.table(db.cfg.MembersTable),
		"{history}", db.d.table(db.cfg.HistoryTable), "{topics}", db.d.table(db.cfg.TopicsTable),
		"{marks}", db.d.table(db.cfg.MarksTable), "{events}", db.d.table(db.cfg.EventsTable),
		"{bans}", db.d.table(db.cfg.BansTable), "{moderation}", db.d.table(db.cfg.ModerationTable)).Replace(q))
}

// exec runs SQL written as sql takes it on the store's own pool.
func (db *testDB) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	q = db.sql(q)
	if _, err := db.db.Exec(q, args...); err != nil {
		t.Fatalf("%s %v: %v", q, args, err)
	}
}

// count runs a COUNT(*) query written as sql takes it.
func (db *testDB) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	q = db.sql(q)
	var n int
	if err := db.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// another opens a second store (a pool of its own, as another imcd) on
// db's tables, closed when the test ends.
func (db *testDB) another(t testing.TB) *DB {
	t.Helper()
	other, err := Open(context.Background(), db.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

func (db *testDB) load(t testing.TB) []*imc.Room {
	t.Helper()
	rooms, err := db.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rooms
}

func (db *testDB) apply(t testing.TB, changes ...imc.Change) {
	t.Helper()
	if err := db.Apply(context.Background(), changes); err != nil {
		t.Fatalf("Apply %v: %v", changes, err)
	}
}

func uri(t testing.TB, s string) imc.URI {
	t.Helper()
	u, err := imc.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Change constructors, for short tests.
func createRoom(room imc.URI, f imc.RoomFlags) imc.Change {
	return imc.Change{Op: imc.OpCreateRoom, Room: room, RoomFlags: f}
}
func deleteRoom(room imc.URI) imc.Change { return imc.Change{Op: imc.OpDeleteRoom, Room: room} }
func updateRoom(room imc.URI, f imc.RoomFlags) imc.Change {
	return imc.Change{Op: imc.OpUpdateRoom, Room: room, RoomFlags: f}
}
func addMember(room, m imc.URI, f imc.MemberFlags) imc.Change {
	return imc.Change{Op: imc.OpAddMember, Room: room, Member: m, MemberFlags: f}
}
func updateMember(room, m imc.URI, f imc.MemberFlags) imc.Change {
	return imc.Change{Op: imc.OpUpdateMember, Room: room, Member: m, MemberFlags: f}
}
func removeMember(room, m imc.URI) imc.Change {
	return imc.Change{Op: imc.OpRemoveMember, Room: room, Member: m}
}

// dump renders rooms in a canonical text form for comparison: rooms sorted
// by key, members in order, "*" owner, "~" admin, "?" invited.
func dump(rooms []*imc.Room) string {
	sorted := append([]*imc.Room(nil), rooms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	var b strings.Builder
	for _, r := range sorted {
		fmt.Fprintf(&b, "%s flag=%d:", r.URI, r.Flags)
		for _, m := range r.Members() {
			b.WriteByte(' ')
			if m.Flags&imc.MemberOwner != 0 {
				b.WriteByte('*')
			}
			if m.Flags&imc.MemberAdmin != 0 {
				b.WriteByte('~')
			}
			if m.Flags&imc.MemberInvited != 0 {
				b.WriteByte('?')
			}
			b.WriteString(m.URI.AOR())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// dumpSet renders an imc.Rooms like dump.
func dumpSet(rs *imc.Rooms) string {
	var rooms []*imc.Room
	rs.EachRoom(func(r *imc.Room) bool { rooms = append(rooms, r); return true })
	return dump(rooms)
}

func wantRooms(t testing.TB, got []*imc.Room, want string) {
	t.Helper()
	if g := dump(got); g != want {
		t.Errorf("loaded rooms:\n%s\nwant:\n%s", g, want)
	}
}
