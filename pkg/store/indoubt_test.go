package store

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// proxied opens a store on direct's tables through a MySQL proxy.
func proxied(t *testing.T, direct *testDB) (*dbproxy.Proxy, *testDB) {
	t.Helper()
	proxy, cfg := proxiedConfig(t, direct, dbproxy.MySQL)
	return proxy, openWith(t, cfg)
}

// The connection dies during COMMIT of a create-room, delete-room,
// add-member or remove-member change set, once before the COMMIT reaches
// MariaDB and once after MariaDB has committed: Apply reports ErrInDoubt
// both times (it cannot tell them apart), and LoadRooms then gives exactly
// what the tables hold: the change set in full or not at all.
func TestInDoubtLoadRooms(t *testing.T) {
	needEngine(t, dburl.MySQL)
	ctx := context.Background()
	direct := openTest(t, dburl.MySQL)
	proxy, db := proxied(t, direct)
	owner, bob := uri(t, "sip:owner@h"), uri(t, "sip:bob@h")
	type tc struct {
		name         string
		setup, apply func(room imc.URI) []imc.Change
	}
	for _, c := range []tc{
		{"create-room", nil, func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, imc.RoomPrivate), addMember(r, owner, imc.MemberOwner)}
		}},
		{"delete-room", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner), addMember(r, bob, 0)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{deleteRoom(r)} }},
		{"add-member", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{addMember(r, bob, imc.MemberAdmin)} }},
		{"remove-member", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner), addMember(r, bob, 0)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{removeMember(r, bob)} }},
	} {
		for _, cut := range []dbproxy.Commit{dbproxy.BeforeCommit, dbproxy.AfterCommit} {
			room := imc.URI{User: c.name + "-" + strconv.Itoa(int(cut)), Host: "h"}
			model := imc.NewRooms()
			if c.setup != nil {
				direct.apply(t, c.setup(room)...)
				model.Apply(c.setup(room))
			}
			changes := c.apply(room)
			if cut == dbproxy.AfterCommit {
				model.Apply(changes)
			}
			want := dumpMap(map[string]*imc.Room{room.Key(): model.Room(room.Key())})

			proxy.CutAtCommit(cut)
			err := db.Apply(ctx, changes)
			if !errors.Is(err, ErrInDoubt) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s, %s: Apply = %v, want ErrInDoubt and ErrUnavailable", c.name, cut, err)
			}
			select {
			case got := <-proxy.Cuts:
				if got != cut {
					t.Fatalf("%s: proxy made %s, want %s", c.name, got, cut)
				}
			default:
				t.Fatalf("%s, %s: Apply returned %v without the proxy cutting at COMMIT", c.name, cut, err)
			}
			// The store that saw the doubt re-reads the room through a new
			// connection; the truth, through a connection of its own.
			got, err := db.LoadRooms(ctx, []imc.URI{room})
			if err != nil {
				t.Fatalf("%s, %s: LoadRooms: %v", c.name, cut, err)
			}
			if g := dumpMap(got); g != want {
				t.Errorf("%s, %s: LoadRooms after the doubt:\n%s\nwant:\n%s", c.name, cut, g, want)
			}
			truth, err := direct.LoadRooms(ctx, []imc.URI{room})
			if err != nil {
				t.Fatal(err)
			}
			if g := dumpMap(truth); g != want {
				t.Errorf("%s, %s: the tables hold:\n%s\nwant:\n%s", c.name, cut, g, want)
			}
		}
	}
	// The store goes on through the proxy, with nothing armed.
	db.apply(t, createRoom(uri(t, "sip:after@h"), 0), addMember(uri(t, "sip:after@h"), owner, imc.MemberOwner))
}

// ApplyOnce resolves a COMMIT in doubt by itself: cut before the COMMIT
// reached MariaDB, its retry applies the event; cut after MariaDB
// committed, its retry finds the key under its own claim. Either way the
// caller hears "applied", and the change set is in the tables once.
func TestApplyOnceInDoubt(t *testing.T) {
	needEngine(t, dburl.MySQL)
	ctx := context.Background()
	direct := openWith(t, historyConfig(t, dburl.MySQL))
	proxy, db := proxied(t, direct)
	owner := uri(t, "sip:owner@h")
	for _, cut := range []dbproxy.Commit{dbproxy.BeforeCommit, dbproxy.AfterCommit} {
		room := imc.URI{User: "once-" + strconv.Itoa(int(cut)), Host: "h"}
		key := EventKey("call-"+room.User, "1", "tag")
		changes := []imc.Change{createRoom(room, 0), addMember(room, owner, imc.MemberOwner)}
		proxy.CutAtCommit(cut)
		applied, err := db.ApplyOnce(ctx, key, changes)
		if !applied || err != nil {
			t.Errorf("%s: ApplyOnce = %v, %v; want applied", cut, applied, err)
		}
		select {
		case got := <-proxy.Cuts:
			if got != cut {
				t.Fatalf("proxy made %s, want %s", got, cut)
			}
		default:
			t.Fatalf("%s: no cut at COMMIT", cut)
		}
		got, err := direct.LoadRooms(ctx, []imc.URI{room})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := dumpMap(got), "sip:"+room.AOR()+" flag=0: *owner@h\nabsent: \n"; g != w {
			t.Errorf("%s: tables hold:\n%s\nwant:\n%s", cut, g, w)
		}
		if applied, err := direct.ApplyOnce(ctx, key, changes); applied || err != nil {
			t.Errorf("%s: the same event again = %v, %v", cut, applied, err)
		}
	}
}
