package daemon

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// historyConfig is a configuration with history on, on engine's test
// database (tables of the test's own), with its data in dir.
func historyConfig(t *testing.T, f *opensipstest.Server, engine, dir string, tables testdb.Tables) config.Config {
	t.Helper()
	cfg := testConfig(t, f, dir)
	cfg.History = config.HistoryOn
	cfg.RateLimit = 0
	if engine != testdb.SQLite {
		cfg.DBURL = testdb.Need(t, engine)
		cfg.CreateTables = true
		cfg.RoomsTable, cfg.MembersTable = tables.Rooms, tables.Members
		cfg.HistoryTable, cfg.TopicsTable, cfg.MarksTable = tables.Extra[0], tables.Extra[1], tables.Extra[2]
	}
	return cfg
}

func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range []string{testdb.SQLite, testdb.MySQL, testdb.Postgres} {
		t.Run(e, func(t *testing.T) {
			if e != testdb.SQLite {
				testdb.Need(t, e)
			}
			fn(t, e)
		})
	}
}

func newTables(t *testing.T, engine string) testdb.Tables {
	return testdb.NewTables(t, engine, "imc_history", "imc_topics", "imc_history_marks")
}

// stamps are the times history lines carry; the tests compare without them.
var stamps = regexp.MustCompile(`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] `)

func unstamped(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = stamps.ReplaceAllString(l, "[t] ")
	}
	return out
}

// TestHistoryAndTopicSurviveRestart: chat lines and the topic are stored,
// #history and #topic read them back after imcd restarts, and a new member
// gets the topic and the last lines, on every engine.
func TestHistoryAndTopicSurviveRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := opensipstest.New(t, opensipstest.Options{})
		dir, tables := t.TempDir(), newTables(t, engine)
		cfg := historyConfig(t, f, engine, dir, tables)
		cfg.HistoryOnJoin = 2
		d := openDaemon(t, f, cfg)
		aliceAndBob(t, f)
		for _, l := range []string{"one", "two", "##three", "caf\xe9 latin-1"} {
			send(t, f, alice, room1, l, 1)
		}
		same(t, "topic set", send(t, f, alice, room1, "#topic lunch at noon", 2),
			alice+": *** <"+alice+"> set the topic: lunch at noon", bob+": *** <"+alice+"> set the topic: lunch at noon")
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}

		cfg = historyConfig(t, f, engine, dir, tables)
		cfg.HistoryOnJoin = 2
		d = openDaemon(t, f, cfg)
		same(t, "#history after restart", unstamped(send(t, f, bob, room1, "#history 3", 1)),
			bob+": The last 3 of 4 lines said in "+room1+":\n[t] alice@example.com: two\n[t] alice@example.com: #three\n[t] alice@example.com: caf\xe9 latin-1")
		got := send(t, f, bob, room1, "#topic", 1)
		if len(got) != 1 || !strings.HasPrefix(got[0], bob+": Topic: lunch at noon (set by "+alice+" on ") {
			t.Fatalf("#topic after restart: %q", got)
		}
		got = unstamped(send(t, f, carol, room1, "#join", 5))
		joined, topic, lines := 0, false, ""
		for _, g := range got {
			switch {
			case strings.HasSuffix(g, "has joined the room"):
				joined++
			case strings.HasPrefix(g, carol+": Topic: lunch at noon"):
				topic = true
			case strings.HasPrefix(g, carol+": What was said before you joined"):
				lines = g
			}
		}
		if joined != 3 || !topic || lines != carol+": What was said before you joined (the last 2 of 4 lines):\n[t] alice@example.com: #three\n[t] alice@example.com: caf\xe9 latin-1" {
			t.Fatalf("carol's join: %q", got)
		}
		// An operator reads it too, the body byte for byte.
		reply := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:history","params":{"room":"`+room1+`","lines":"1"},"id":1}`)
		if !strings.HasPrefix(reply, `{"jsonrpc":"2.0","result":{"ROOM":"`+room1+`","TOTAL":4,"LINES":[{"SEQ":4,"TIME":"`) ||
			!strings.HasSuffix(reply, `"SENDER":"`+alice+`","CONTENT_TYPE":"text/plain","BODY":"caf`+"\xe9"+` latin-1"}]},"id":1}`) {
			t.Fatalf("imc:history: %q", reply)
		}
	})
}

// TestHistoryOfADestroyedRoom: a room destroyed and created again under
// the same name starts with no history, even for lines still being
// written when it was destroyed.
func TestHistoryOfADestroyedRoom(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := opensipstest.New(t, opensipstest.Options{})
		d := openDaemon(t, f, historyConfig(t, f, engine, t.TempDir(), newTables(t, engine)))
		aliceAndBob(t, f)
		raiseLines(t, f, alice, 30)
		if _, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 30); err != nil {
			t.Fatal(err)
		}
		send(t, f, alice, room1, "#destroy", 2)
		send(t, f, bob, manager, "#create chat-1", 1)
		same(t, "fresh room", send(t, f, bob, room1, "#history", 1), bob+": Nothing has been said in "+room1+" yet")
		send(t, f, bob, room1, "first of the new room", 0)
		same(t, "the new room's line", unstamped(send(t, f, bob, room1, "#history", 1)),
			bob+": The 1 line said in "+room1+":\n[t] bob@example.com: first of the new room")
		reply := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_history","params":["`+room1+`"],"id":2}`)
		if !strings.Contains(reply, `"TOTAL":1,"LINES":[{"SEQ":1,`) {
			t.Fatalf("imc_history of the new room: %s", reply)
		}
	})
}

// TestHistoryRetention: the purge keeps the newest history_keep_lines of
// each room.
func TestHistoryRetention(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := historyConfig(t, f, testdb.SQLite, t.TempDir(), testdb.Tables{})
	cfg.HistoryKeepLines = 3
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	raiseLines(t, f, alice, 10)
	if _, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 10); err != nil {
		t.Fatal(err)
	}
	send(t, f, bob, room1, "#history 1", 1) // waits until all ten are written
	d.history.Purge(context.Background(), time.Now())
	same(t, "after the purge", unstamped(send(t, f, bob, room1, "#history 50", 1)),
		bob+": The 3 lines said in "+room1+":\n[t] alice@example.com: line 7\n[t] alice@example.com: line 8\n[t] alice@example.com: line 9")
}

// TestHistoryOffOrMissing: history = off stores nothing and says so; with
// auto, a server database without the history tables (and no
// create_tables) runs without history rather than failing.
func TestHistoryOffOrMissing(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.History = config.HistoryOff
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	same(t, "off", send(t, f, bob, room1, "#history", 1), bob+": This server keeps no history of the rooms")
	if d.history != nil {
		t.Fatal("a history writer runs with history off")
	}
	d.Close()

	url := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL)
	cfg = testConfig(t, f, t.TempDir())
	cfg.DBURL, cfg.RoomsTable, cfg.MembersTable, cfg.CreateTables = url, tables.Rooms, tables.Members, true
	cfg.History = config.HistoryOff
	openDaemon(t, f, cfg).Close() // the imc tables only
	cfg.CreateTables, cfg.History = false, config.HistoryAuto
	cfg.HistoryTable = "imc_history_none_" + tables.Rooms[len("imc_rooms_"):]
	d = openDaemon(t, f, cfg)
	if d.history != nil {
		t.Fatal("history on without its tables")
	}
	same(t, "auto without tables", send(t, f, alice, manager, "#create chat-5", 1), alice+": *** room was created")
}

// TestHistoryMetrics: the lines written show in /metrics.
func TestHistoryMetrics(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, historyConfig(t, f, testdb.SQLite, t.TempDir(), testdb.Tables{}))
	aliceAndBob(t, f)
	raiseLines(t, f, alice, 5)
	if _, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 5); err != nil {
		t.Fatal(err)
	}
	send(t, f, bob, room1, "#history 1", 1) // the lines are written once it answers
	if v := metric(t, d, "opensips_imc_history_lines_written_total"); v != 5 {
		t.Errorf("history lines written %g, want 5", v)
	}
	if v := metric(t, d, "opensips_imc_history_lines_dropped_total"); v != 0 {
		t.Errorf("history lines dropped %g", v)
	}
}
