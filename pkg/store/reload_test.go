package store

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// dumpMap renders LoadRooms' answer: the rooms found as dump does, then the
// keys that map to nil.
func dumpMap(m map[string]*imc.Room) string {
	var rooms []*imc.Room
	var absent []string
	for k, r := range m {
		if r == nil {
			absent = append(absent, k)
			continue
		}
		if r.Key() != k {
			absent = append(absent, "MISKEYED "+k)
		}
		rooms = append(rooms, r)
	}
	sort.Strings(absent)
	return dump(rooms) + "absent: " + strings.Join(absent, " ") + "\n"
}

// LoadRooms gives, for the rooms asked, what Load gives for them: the same
// rows used and skipped, members found under other spellings of the room
// column, nil for a room the tables lack.
func TestLoadRooms(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		ctx := context.Background()
		a, b, c := uri(t, "sip:alpha@h"), uri(t, "sip:Beta@H"), uri(t, "sip:gamma@h")
		alice, bob, carol := uri(t, "sip:alice@h"), uri(t, "sip:bob@h"), uri(t, "sip:carol@h")
		db.apply(t, createRoom(a, 0), addMember(a, alice, imc.MemberOwner), addMember(a, bob, imc.MemberInvited))
		db.apply(t, createRoom(b, imc.RoomPrivate), addMember(b, bob, imc.MemberOwner), addMember(b, carol, imc.MemberAdmin))
		db.apply(t, createRoom(c, 0), addMember(c, carol, imc.MemberOwner))
		// Rows another program wrote: a member under "sips:", one under the
		// room's name in other letter case than its row (where the
		// collation ignores case), an odd member, a room with the native
		// 'deleted' mark and its member.
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('dave', 'h', 'sips:alpha@h', 0)")
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('erin', 'h', 'sip:Beta@H', 4)")
		if engine == dburl.MySQL {
			db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('fay', 'h', 'SIP:BETA@H', 0)")
		}
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('odd', 'h', 'sip:alpha@h', 32)")
		db.exec(t, "INSERT INTO {rooms} (name, domain, flag) VALUES ('gone', 'h', 2)")
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('frank', 'h', 'sip:gone@h', 1)")

		all := map[string]*imc.Room{}
		for _, r := range db.load(t) {
			all[r.Key()] = r
		}
		f := func(ask []imc.URI) {
			t.Helper()
			want := map[string]*imc.Room{}
			for _, u := range ask {
				want[u.Key()] = all[u.Key()]
			}
			got, err := db.LoadRooms(ctx, ask)
			if err != nil {
				t.Fatalf("LoadRooms %v: %v", ask, err)
			}
			if g, w := dumpMap(got), dumpMap(want); g != w {
				t.Errorf("LoadRooms %v:\n%s\nwant (as Load gives):\n%s", ask, g, w)
			}
		}
		f([]imc.URI{a})
		f([]imc.URI{uri(t, "sip:BETA@h")})
		f([]imc.URI{a, b, c})
		f([]imc.URI{uri(t, "sip:nope@h")})
		f([]imc.URI{uri(t, "sip:gone@h"), a, a})
		f(nil)
		if g := dump([]*imc.Room{all[a.Key()], all[b.Key()]}); !strings.Contains(g, "dave@h") || !strings.Contains(g, "?erin@h") {
			t.Errorf("the test rows were not loaded as meant:\n%s", g)
		}
		if !strings.Contains(db.logs.String(), "row.username=odd") {
			t.Errorf("the odd row was not logged:\n%s", db.logs)
		}

		if engine != dburl.MySQL {
			// The one difference from Load: a room column in other letter
			// case than the room row is not looked for (it would take a
			// scan of the members table).
			db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('fay', 'h', 'SIP:BETA@H', 0)")
			got, err := db.LoadRooms(ctx, []imc.URI{b})
			if err != nil {
				t.Fatal(err)
			}
			if g := dump([]*imc.Room{got[b.Key()]}); strings.Contains(g, "fay") || !strings.Contains(g, "?erin@h") {
				t.Errorf("LoadRooms with a member row in other letter case: %s", g)
			}
			if !strings.Contains(dump(db.load(t)), "fay@h") {
				t.Error("Load does not find the member row in other letter case")
			}
		}

		// More rooms than one query names.
		var many []imc.URI
		for i := range loadRoomsChunk + 7 {
			many = append(many, imc.URI{User: "absent" + strconv.Itoa(i), Host: "h"})
		}
		many = append(many, c)
		f(many)
	})
}

// Load may be called again on an open store (MI imc:reload): it reads the
// tables as they are now, changed by another program meanwhile.
func TestLoadAgain(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		room, alice, bob := uri(t, "sip:r@h"), uri(t, "sip:alice@h"), uri(t, "sip:bob@h")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
		wantRooms(t, db.load(t), "sip:r@h flag=0: *alice@h\n")

		if err := db.another(t).Apply(context.Background(), []imc.Change{addMember(room, bob, imc.MemberAdmin), createRoom(uri(t, "sip:s@h"), 1)}); err != nil {
			t.Fatal(err)
		}
		db.exec(t, "UPDATE {rooms} SET flag = 1 WHERE name = 'r'")
		wantRooms(t, db.load(t), "sip:r@h flag=1: *alice@h ~bob@h\nsip:s@h flag=1:\n")
		db.exec(t, "DELETE FROM {members}")
		db.exec(t, "DELETE FROM {rooms}")
		wantRooms(t, db.load(t), "")
		// And the store writes on.
		db.apply(t, createRoom(room, 0), addMember(room, bob, imc.MemberOwner))
		wantRooms(t, db.load(t), "sip:r@h flag=0: *bob@h\n")
		if engine == dburl.SQLite {
			return
		}
		// A large members table, read in ranges at once, loads again too.
		db.parallelSpan = 1
		wantRooms(t, db.load(t), "sip:r@h flag=0: *bob@h\n")
		wantRooms(t, db.load(t), "sip:r@h flag=0: *bob@h\n")
	})
}
