package daemon

import (
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// mariaDB returns a configuration on tables of the test's own on the
// machine's MariaDB.
func mariaDB(t *testing.T, f *opensipstest.Server) config.Config {
	t.Helper()
	url := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL)
	cfg := testConfig(t, f, t.TempDir())
	cfg.DBURL = url
	cfg.RoomsTable, cfg.MembersTable = tables.Rooms, tables.Members
	cfg.CreateTables = true
	cfg.RateLimit = 0
	cfg.History = config.HistoryOff // the test is about the standard tables
	return cfg
}

// TestReload: rows changed behind imcd's back (by an operator, a
// migration) reach memory with imc:reload, which says what changed (what a
// reload does to memory is pkg/rooms's TestReload).
func TestReload(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := mariaDB(t, f)
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	db, err := testdb.Open(cfg.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"DELETE FROM " + cfg.MembersTable + " WHERE username = 'bob'",
		"INSERT INTO " + cfg.RoomsTable + " (name, domain, flag) VALUES ('chat-7', 'example.com', 0)",
		"INSERT INTO " + cfg.MembersTable + " (username, domain, room, flag) VALUES ('dave', 'example.com', 'sip:chat-7@example.com', 1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:reload","id":1}`)
	if !strings.HasPrefix(got, `{"jsonrpc":"2.0","result":{"ROOMS":2,"ADDED":1,"REMOVED":0,"CHANGED":1,"BUSY":0,"TOOK_MS":`) {
		t.Fatalf("imc:reload: %s", got)
	}
	same(t, "bob is no member now", send(t, f, bob, room1, "hi", 1), bob+": You are not a member of "+room1)
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:chat-7@example.com"},"id":2}`); !strings.Contains(got, "dave") {
		t.Fatalf("the room added behind imcd's back: %s", got)
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_reload","id":3}`); !strings.Contains(got, `"ADDED":0,"REMOVED":0,"CHANGED":0`) {
		t.Fatalf("a second reload changed something: %s", got)
	}
}
