package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/store"
)

// The reliability tests run the daemon on the machine's MariaDB through a
// proxy the test controls: the database can hang, or a connection can die
// right before or right after its COMMIT.

// mariaDB returns a configuration on tables of the test's own, reached
// through a proxy, and the URL that bypasses it (to read the truth).
func mariaDB(t *testing.T, f *opensipstest.Server) (config.Config, *dbproxy.Proxy, string) {
	t.Helper()
	url := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL)
	proxy, err := dbproxy.Start(testdb.HostPort(url), dbproxy.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := testConfig(t, f, t.TempDir())
	cfg.DBURL = testdb.Through(url, proxy.Addr())
	cfg.RoomsTable, cfg.MembersTable = tables.Rooms, tables.Members
	cfg.CreateTables = true
	cfg.RateLimit = 0
	cfg.History = config.HistoryOff // these tests are about the standard tables
	return cfg, proxy, url
}

// truth reads every room from the database itself, past the proxy.
func truth(t *testing.T, cfg config.Config, url string) map[string]*imc.Room {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{URL: url, RoomsTable: cfg.RoomsTable, MembersTable: cfg.MembersTable})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rooms, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*imc.Room, len(rooms))
	for _, r := range rooms {
		out[r.Key()] = r
	}
	return out
}

// memoryEqualsDatabase fails unless the daemon's rooms equal the tables'.
func memoryEqualsDatabase(t *testing.T, d *Daemon, cfg config.Config, url string) {
	t.Helper()
	db := truth(t, cfg, url)
	mem := map[string]*imc.Room{}
	globalView{d}.EachRoom(func(r *imc.Room) bool { mem[r.Key()] = r; return true })
	for k, r := range db {
		if !sameRoom(mem[k], r) {
			t.Errorf("room %s: memory %v, database %v", k, describe(mem[k]), describe(r))
		}
	}
	for k, r := range mem {
		if db[k] == nil {
			t.Errorf("room %s in memory (%v) but not in the database", k, describe(r))
		}
	}
}

func describe(r *imc.Room) string {
	if r == nil {
		return "none"
	}
	var b strings.Builder
	b.WriteString(r.URI.String())
	for _, m := range r.Members() {
		b.WriteString(" " + m.URI.String())
		if m.Owner() {
			b.WriteString("*")
		}
		if m.Invited() {
			b.WriteString("?")
		}
	}
	return b.String()
}

const unavailable = "The room service cannot save changes right now; please try again later"

// TestCommitInDoubt: the connection dies right before the COMMIT reaches
// MariaDB (nothing landed) or right after MariaDB committed (it landed),
// for a create, a destroy, a join and a removal. Either way the store
// cannot tell, the daemon re-reads the rooms, memory equals the database
// afterwards, and the sender is told what really happened.
func TestCommitInDoubt(t *testing.T) {
	type step struct {
		from, to, body string
		landed         []string // deliveries when the change landed
	}
	joined := func(u string) []string {
		return []string{alice + ": *** <" + u + "> has joined the room", bob + ": *** <" + u + "> has joined the room", u + ": *** <" + u + "> has joined the room"}
	}
	steps := map[string]step{
		"create":  {alice, manager, "#create chat-2", []string{alice + ": *** room was created"}},
		"destroy": {alice, room1, "#destroy", []string{alice + ": The room has been destroyed", bob + ": The room has been destroyed"}},
		"join":    {carol, room1, "#join", joined(carol)},
		"remove":  {alice, room1, "#remove bob", []string{bob + ": You have been removed from this room", alice + ": *** <" + bob + "> has been removed from the room"}},
	}
	for _, name := range []string{"create", "destroy", "join", "remove"} {
		for _, cut := range []dbproxy.Commit{dbproxy.BeforeCommit, dbproxy.AfterCommit} {
			t.Run(name+"/"+cut.String(), func(t *testing.T) {
				f := opensipstest.New(t, opensipstest.Options{})
				cfg, proxy, url := mariaDB(t, f)
				d := openDaemon(t, f, cfg)
				aliceAndBob(t, f)
				st := steps[name]
				proxy.CutAtCommit(cut)
				var want []string
				if cut == dbproxy.AfterCommit {
					want = st.landed
				} else {
					want = []string{st.from + ": " + unavailable}
				}
				got := send(t, f, st.from, st.to, st.body, len(want))
				quiet(t, f, len(want))
				if name == "remove" && cut == dbproxy.AfterCommit {
					// The removal notice's text is the engine's; only the
					// recipients matter here.
					if len(got) != 2 || !strings.HasPrefix(got[0], alice) || !strings.HasPrefix(got[1], bob) {
						t.Fatalf("deliveries %q", got)
					}
				} else {
					same(t, st.body, got, want...)
				}
				select {
				case c := <-proxy.Cuts:
					if c != cut {
						t.Fatalf("the proxy cut %v", c)
					}
				default:
					t.Fatal("the proxy cut nothing: the change set had no COMMIT?")
				}
				memoryEqualsDatabase(t, d, cfg, url)
				// The room takes commands again at once: nothing is left
				// doubtful when the re-read worked.
				same(t, "list", send(t, f, alice, manager, "#create chat-9", 1), alice+": *** room was created")
				memoryEqualsDatabase(t, d, cfg, url)
			})
		}
	}
}

// TestHungDatabase: MariaDB stops answering (the proxy holds every byte).
// Chat goes on at once; a command is answered "try again later" within
// command_timeout and the store's timeout, not when the database comes
// back; once it is back, commands work again and everything acknowledged
// is in the tables.
func TestHungDatabase(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg, proxy, url := mariaDB(t, f)
	cfg.CommandTimeout = time.Second
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)

	proxy.Hold()
	released := false
	defer func() {
		if !released {
			proxy.Release()
		}
	}()
	same(t, "chat while the database hangs", send(t, f, alice, room1, "still here", 1), bob+": <alice@example.com>: still here")
	same(t, "a command while it hangs", send(t, f, carol, room1, "#join", 1), carol+": "+unavailable)
	// The database is known down now: the next command is answered at once.
	same(t, "a second command", send(t, f, carol, manager, "#create chat-3", 1), carol+": "+unavailable)
	same(t, "chat again", send(t, f, bob, room1, "and me", 1), alice+": <bob@example.com>: and me")
	memoryHas := func(key string) bool { return globalView{d}.Room(key) != nil }
	if memoryHas("chat-3@example.com") {
		t.Fatal("a refused #create is in memory")
	}

	proxy.Release()
	released = true
	waitReady(t, d)
	same(t, "join once it is back", send(t, f, carol, room1, "#join", 3), joinedAll(carol)...)
	memoryEqualsDatabase(t, d, cfg, url)
}

func joinedAll(u string) []string {
	return []string{alice + ": *** <" + u + "> has joined the room", bob + ": *** <" + u + "> has joined the room", u + ": *** <" + u + "> has joined the room"}
}

// TestCommandsKeepTheirOrder: while a command of a room is being saved,
// other senders' chat lines are not held behind it, but the command's
// sender's own later line is: "#join" then "hello" arrive in that order.
func TestCommandsKeepTheirOrder(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg, proxy, _ := mariaDB(t, f)
	openDaemon(t, f, cfg)
	aliceAndBob(t, f)

	proxy.Hold()
	f.Reset()
	for _, ev := range []opensipstest.Event{
		opensipstest.NewEvent(carol, room1, "#join"),
		opensipstest.NewEvent(carol, room1, "hello, I am new"),
		opensipstest.NewEvent(alice, room1, "lunch?"),
	} {
		if _, err := f.Raise(ev); err != nil {
			t.Fatal(err)
		}
	}
	// alice's line is not held behind carol's join; carol is no member yet.
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "while the join is being saved", lines(ds), bob+": <alice@example.com>: lunch?")
	proxy.Release()
	ds, err = f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 6)
	if err != nil {
		t.Fatalf("%v: %q", err, lines(f.Deliveries()))
	}
	quiet(t, f, 6)
	var toAlice []string
	for _, dl := range ds {
		if dl.To == alice {
			toAlice = append(toAlice, dl.Body)
		}
	}
	if want := []string{"*** <" + carol + "> has joined the room", "<carol@example.com>: hello, I am new"}; strings.Join(toAlice, "|") != strings.Join(want, "|") {
		t.Fatalf("alice got %q, want %q", toAlice, want)
	}
}

// TestReload: rows changed behind imcd's back (by an operator, a
// migration) reach memory with imc:reload, which says what changed.
func TestReload(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg, _, url := mariaDB(t, f)
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	db, err := testdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("INSERT INTO "+cfg.MembersTable+" (username, domain, room, flag) VALUES ('carol', 'example.com', ?, 0)", room1)
	exec("INSERT INTO " + cfg.RoomsTable + " (name, domain, flag) VALUES ('chat-7', 'example.com', 0)")
	exec("INSERT INTO " + cfg.MembersTable + " (username, domain, room, flag) VALUES ('dave', 'example.com', 'sip:chat-7@example.com', 1)")
	got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:reload","id":1}`)
	if !strings.HasPrefix(got, `{"jsonrpc":"2.0","result":{"ROOMS":2,"ADDED":1,"REMOVED":0,"CHANGED":1,"BUSY":0,"TOOK_MS":`) {
		t.Fatalf("imc:reload: %s", got)
	}
	memoryEqualsDatabase(t, d, cfg, url)
	same(t, "carol is a member now", send(t, f, carol, room1, "hi", 2), alice+": <carol@example.com>: hi", bob+": <carol@example.com>: hi")
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_reload","id":2}`); !strings.Contains(got, `"ADDED":0,"REMOVED":0,"CHANGED":0`) {
		t.Fatalf("a second reload changed something: %s", got)
	}
}
