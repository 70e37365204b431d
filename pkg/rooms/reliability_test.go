package rooms

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store"
)

// The reliability tests run the runtime on the machine's MariaDB through a
// proxy the test controls: the database can hang, or a connection can die
// right before or right after its COMMIT.

// onMariaDB opens a runtime on tables of the test's own, reached through a
// proxy; it returns the proxy, and the store configuration that bypasses
// it (to read the truth).
func onMariaDB(t *testing.T, o options) (*harness, *dbproxy.Proxy, store.Config) {
	t.Helper()
	url := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL)
	proxy, err := dbproxy.Start(testdb.HostPort(url), dbproxy.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	direct := store.Config{URL: url, RoomsTable: tables.Rooms, MembersTable: tables.Members}
	through := direct
	through.URL, through.CreateTables = testdb.Through(url, proxy.Addr()), true
	return openRuntime(t, through, o), proxy, direct
}

// truth reads every room from the database itself, past the proxy.
func truth(t *testing.T, sc store.Config) map[string]*imc.Room {
	t.Helper()
	st, err := store.Open(context.Background(), sc)
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

// memoryEqualsDatabase fails unless the runtime's rooms equal the tables'.
func memoryEqualsDatabase(t *testing.T, h *harness, sc store.Config) {
	t.Helper()
	db := truth(t, sc)
	mem := map[string]*imc.Room{}
	h.rt.View().EachRoom(func(r *imc.Room) bool { mem[r.Key()] = r; return true })
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
// cannot tell, the runtime re-reads the rooms, memory equals the database
// afterwards, and the sender is told what really happened.
func TestCommitInDoubt(t *testing.T) {
	type step struct {
		from, to, body string
		landed         []string // notices when the change landed
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
				h, proxy, direct := onMariaDB(t, options{})
				h.aliceAndBob()
				st := steps[name]
				proxy.CutAtCommit(cut)
				var want []string
				if cut == dbproxy.AfterCommit {
					want = st.landed
				} else {
					want = []string{st.from + ": " + unavailable}
				}
				got := h.send(st.from, st.to, st.body, len(want))
				h.quiet(len(want))
				if name == "remove" && cut == dbproxy.AfterCommit {
					// The removal notice's text is the engine's; only the
					// recipients matter here.
					if len(got) != 2 || !strings.HasPrefix(got[0], alice) || !strings.HasPrefix(got[1], bob) {
						t.Fatalf("notices %q", got)
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
				memoryEqualsDatabase(t, h, direct)
				// The room takes commands again at once: nothing is left
				// doubtful when the re-read worked.
				same(t, "list", h.send(alice, manager, "#create chat-9", 1), alice+": *** room was created")
				memoryEqualsDatabase(t, h, direct)
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
	h, proxy, direct := onMariaDB(t, options{commandTimeout: time.Second})
	h.aliceAndBob()

	proxy.Hold()
	released := false
	defer func() {
		if !released {
			proxy.Release()
		}
	}()
	same(t, "chat while the database hangs", h.send(alice, room1, "still here", 1), bob+": <alice@example.com>: still here")
	same(t, "a command while it hangs", h.send(carol, room1, "#join", 1), carol+": "+unavailable)
	// The database is known down now: the next command is answered at once.
	same(t, "a second command", h.send(carol, manager, "#create chat-3", 1), carol+": "+unavailable)
	same(t, "chat again", h.send(bob, room1, "and me", 1), alice+": <bob@example.com>: and me")
	if h.rt.View().Room("chat-3@example.com") != nil {
		t.Fatal("a refused #create is in memory")
	}

	proxy.Release()
	released = true
	eventually(t, "the database known up again", h.db.Up)
	same(t, "join once it is back", h.send(carol, room1, "#join", 3), joined(carol)...)
	memoryEqualsDatabase(t, h, direct)
}

func joined(u string) []string {
	return []string{alice + ": *** <" + u + "> has joined the room", bob + ": *** <" + u + "> has joined the room", u + ": *** <" + u + "> has joined the room"}
}

// TestCommandsKeepTheirOrder: while a command of a room is being saved,
// other senders' chat lines do not wait behind it, but the command's
// sender's own later line does: "#join" then "hello" arrive in that order.
func TestCommandsKeepTheirOrder(t *testing.T) {
	h, proxy, _ := onMariaDB(t, options{})
	h.aliceAndBob()

	proxy.Hold()
	h.raise(carol, room1, "#join", nil)
	h.raise(carol, room1, "hello, I am new", nil)
	h.raise(alice, room1, "lunch?", nil)
	// alice's line does not wait behind carol's join; carol is no member yet.
	same(t, "while the join is being saved", h.out.wait(t, "lunch?", 1), bob+": <alice@example.com>: lunch?")
	proxy.Release()
	h.out.wait(t, "join and hello", 6)
	h.quiet(6)
	var toAlice []string
	h.out.mu.Lock()
	for _, n := range h.out.notices {
		if n.To.String() == alice {
			toAlice = append(toAlice, n.Body)
		}
	}
	h.out.mu.Unlock()
	if want := []string{"*** <" + carol + "> has joined the room", "<carol@example.com>: hello, I am new"}; strings.Join(toAlice, "|") != strings.Join(want, "|") {
		t.Fatalf("alice got %q, want %q", toAlice, want)
	}
}

// TestReload: rows changed behind imcd's back (by an operator, a
// migration) reach memory with Reload, which says what changed.
func TestReload(t *testing.T) {
	h, _, direct := onMariaDB(t, options{})
	h.aliceAndBob()
	db, err := testdb.Open(direct.URL)
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
	exec("INSERT INTO "+direct.MembersTable+" (username, domain, room, flag) VALUES ('carol', 'example.com', ?, 0)", room1)
	exec("INSERT INTO " + direct.RoomsTable + " (name, domain, flag) VALUES ('chat-7', 'example.com', 0)")
	exec("INSERT INTO " + direct.MembersTable + " (username, domain, room, flag) VALUES ('dave', 'example.com', 'sip:chat-7@example.com', 1)")
	rep, err := h.rt.Reload(context.Background())
	if err != nil || rep.Rooms != 2 || rep.Added != 1 || rep.Removed != 0 || rep.Changed != 1 || rep.Busy != 0 {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	memoryEqualsDatabase(t, h, direct)
	same(t, "carol is a member now", h.send(carol, room1, "hi", 2), alice+": <carol@example.com>: hi", bob+": <carol@example.com>: hi")
	if rep, err := h.rt.Reload(context.Background()); err != nil || rep.Added+rep.Removed+rep.Changed != 0 {
		t.Fatalf("a second reload changed something: %+v, %v", rep, err)
	}
}
