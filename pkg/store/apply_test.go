package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// Every change kind, one step at a time; after each step Load must give
// what imc.Rooms.Apply gives in memory, and the raw rows must be the ones
// OpenSIPS's module writes.
func TestRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		model := imc.NewRooms()
		room := uri(t, "sip:chat-1@example.com")
		room2 := uri(t, "sip:Chat-2@Example.COM")
		alice, bob, carol := uri(t, "sip:alice@example.com"), uri(t, "sip:bob@other.net:5060"), uri(t, "sip:carol@example.com")
		steps := [][]imc.Change{
			{createRoom(room, 0), addMember(room, alice, imc.MemberOwner)},
			{addMember(room, bob, 0)},
			{addMember(room, carol, imc.MemberInvited)},
			{updateMember(room, carol, 0)},
			// Transient native bits are never stored.
			{updateMember(room, bob, imc.MemberAdmin|8|16)},
			{updateRoom(room, imc.RoomPrivate)},
			{createRoom(room2, imc.RoomPrivate), addMember(room2, bob, imc.MemberOwner), addMember(room2, alice, imc.MemberInvited)},
			{removeMember(room, carol)},
			{updateRoom(room, 0)},
			{deleteRoom(room2)},
			{addMember(room, carol, 0), updateMember(room, bob, 0), removeMember(room, carol)},
		}
		for i, step := range steps {
			db.apply(t, step...)
			model.Apply(step)
			if got, want := dump(db.load(t)), dumpSet(model); got != want {
				t.Fatalf("after step %d %v:\n%s\nwant:\n%s", i, step, got, want)
			}
		}
		// The rows are what the native module writes: room as sip:name@domain,
		// only the stored bits.
		type member struct {
			Username, Domain, Room string
			Flag                   int
		}
		var rows []member
		q := "SELECT username, domain, room, flag FROM " + db.d.table(db.cfg.MembersTable) + " ORDER BY id"
		if err := db.db.Select(&rows, q); err != nil {
			t.Fatal(err)
		}
		want := []member{{"alice", "example.com", "sip:chat-1@example.com", 1}, {"bob", "other.net", "sip:chat-1@example.com", 0}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("member rows %v, want %v", rows, want)
		}
		db.apply(t, deleteRoom(room))
		if got := db.load(t); len(got) != 0 {
			t.Errorf("after deleting every room: %s", dump(got))
		}
		var n int
		if err := db.db.Get(&n, "SELECT COUNT(*) FROM "+db.d.table(db.cfg.MembersTable)); err != nil || n != 0 {
			t.Errorf("members left after deleting every room: %d %v", n, err)
		}
	})
}

// Rooms kept their member order: owner first, then in the order they joined.
func TestMemberOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		room := uri(t, "sip:r@h")
		db.apply(t, createRoom(room, 0), addMember(room, uri(t, "sip:m1@h"), 0))
		db.apply(t, addMember(room, uri(t, "sip:m2@h"), 0))
		db.apply(t, addMember(room, uri(t, "sip:owner@h"), imc.MemberOwner))
		db.apply(t, addMember(room, uri(t, "sip:m3@h"), 0))
		wantRooms(t, db.load(t), "sip:r@h flag=0: *owner@h m1@h m2@h m3@h\n")
	})
}

func TestConflicts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		ctx := context.Background()
		room, alice, bob := uri(t, "sip:r@h"), uri(t, "sip:alice@h"), uri(t, "sip:bob@h")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
		before := dump(db.load(t))
		for _, tc := range []struct {
			name    string
			changes []imc.Change
		}{
			{"room exists", []imc.Change{createRoom(room, 0)}},
			{"member exists", []imc.Change{addMember(room, alice, 0)}},
			{"update a missing member", []imc.Change{updateMember(room, bob, imc.MemberAdmin)}},
			{"update a missing room", []imc.Change{updateRoom(uri(t, "sip:nope@h"), 1)}},
		} {
			err := db.Apply(ctx, tc.changes)
			if !errors.Is(err, ErrConflict) {
				t.Errorf("%s: Apply = %v, want ErrConflict", tc.name, err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: a conflict is not unavailability: %v", tc.name, err)
			}
		}
		if engine == dburl.MySQL {
			// MySQL's *_ci collation makes the unique key ignore case,
			// as imcd's identities do.
			if err := db.Apply(ctx, []imc.Change{addMember(room, uri(t, "sip:ALICE@H"), 0)}); !errors.Is(err, ErrConflict) {
				t.Errorf("member differing in case only: %v, want ErrConflict", err)
			}
		}
		// Removing what is not there is no failure: the end state holds.
		db.apply(t, removeMember(room, bob))
		db.apply(t, deleteRoom(uri(t, "sip:nope@h")))
		if after := dump(db.load(t)); after != before {
			t.Errorf("failed changes changed the tables:\n%s\nwas:\n%s", after, before)
		}
	})
}

// A change set whose third change fails leaves nothing of the first two.
func TestRollback(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		ctx := context.Background()
		room, alice, bob := uri(t, "sip:r@h"), uri(t, "sip:alice@h"), uri(t, "sip:bob@h")

		err := db.Apply(ctx, []imc.Change{createRoom(room, 0), addMember(room, alice, imc.MemberOwner), addMember(room, alice, 0)})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("Apply = %v, want ErrConflict", err)
		}
		wantRooms(t, db.load(t), "")

		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
		err = db.Apply(ctx, []imc.Change{addMember(room, bob, 0), updateRoom(room, imc.RoomPrivate), updateMember(room, uri(t, "sip:zed@h"), 0)})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("Apply = %v, want ErrConflict", err)
		}
		err = db.Apply(ctx, []imc.Change{removeMember(room, alice), deleteRoom(room), createRoom(uri(t, "sip:r@h"), 0), addMember(room, bob, 0), createRoom(room, 0)})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("Apply = %v, want ErrConflict", err)
		}
		wantRooms(t, db.load(t), "sip:r@h flag=0: *alice@h\n")
	})
}

// Values wider than the 64-character columns are refused with
// imc.ErrTooLong before any SQL runs, and nothing is written.
func TestLongValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		ctx := context.Background()
		long := strings.Repeat("a", 65)
		room, alice := uri(t, "sip:r@h"), uri(t, "sip:alice@h")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
		before := dump(db.load(t))

		longRoom := imc.URI{User: strings.Repeat("r", 40), Host: strings.Repeat("h", 20) + ".com"} // 69 as sip:…@…
		for _, c := range [][]imc.Change{
			{addMember(room, imc.URI{User: long, Host: "h"}, 0)},
			{addMember(room, imc.URI{User: "u", Host: long}, 0)},
			{createRoom(imc.URI{User: long, Host: "h"}, 0)},
			{createRoom(longRoom, 0), addMember(longRoom, alice, imc.MemberOwner)},
			{addMember(room, uri(t, "sip:bob@h"), 0), updateMember(room, imc.URI{User: long, Host: "h"}, 0)},
		} {
			err := db.Apply(ctx, c)
			if !errors.Is(err, imc.ErrTooLong) {
				t.Errorf("Apply %v = %v, want imc.ErrTooLong", c, err)
			}
		}
		// 64 characters fit.
		u64 := imc.URI{User: strings.Repeat("u", 64), Host: strings.Repeat("d", 60) + ".com"}
		r64 := imc.URI{User: strings.Repeat("r", 30), Host: strings.Repeat("d", 25) + ".com"} // sip: + 30 + @ + 29 = 64
		if n := len(r64.String()); n != 64 {
			t.Fatalf("r64 is %d long", n)
		}
		db.apply(t, createRoom(r64, 0), addMember(r64, u64, imc.MemberOwner))
		after := dump(db.load(t))
		if want := before + "sip:" + r64.AOR() + " flag=0: *" + u64.AOR() + "\n"; after != want {
			t.Errorf("after:\n%s\nwant:\n%s", after, want)
		}
		if engine == dburl.MySQL {
			// The second line of defence: the session's strict sql_mode
			// makes MySQL refuse rather than truncate.
			q := "INSERT INTO " + db.d.table(db.cfg.MembersTable) + " (username, domain, room, flag) VALUES (?, 'h', 'sip:r@h', 0)"
			_, err := db.db.Exec(q, long)
			if err == nil || db.kind(err) != kindTooLong {
				t.Errorf("MySQL accepted a 65-character value: %v", err)
			}
		}
	})
}

func TestInvalidChange(t *testing.T) {
	db := openTest(t, dburl.SQLite)
	ctx := context.Background()
	for _, c := range []imc.Change{
		{Op: 0, Room: uri(t, "sip:r@h")},
		{Op: 99, Room: uri(t, "sip:r@h")},
		{Op: imc.OpCreateRoom},
		{Op: imc.OpAddMember, Room: uri(t, "sip:r@h")},
	} {
		if err := db.Apply(ctx, []imc.Change{c}); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("Apply %v = %v, want ErrInvalidChange", c, err)
		}
	}
	if err := db.Apply(ctx, nil); err != nil {
		t.Errorf("Apply(nil) = %v", err)
	}
}

// Changes that name a room or member in other letter case than stored
// still find the row (MySQL by collation, the others by a fallback match).
func TestLetterCase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		room, alice, bob := uri(t, "sip:Chat@Example.com"), uri(t, "sip:Alice@example.com"), uri(t, "sip:bob@example.com")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner), addMember(room, bob, 0))
		lower := uri(t, "sip:chat@example.com")
		db.apply(t, updateMember(lower, uri(t, "sip:BOB@EXAMPLE.COM"), imc.MemberAdmin))
		db.apply(t, updateRoom(uri(t, "sip:CHAT@example.com"), imc.RoomPrivate))
		wantRooms(t, db.load(t), "sip:Chat@Example.com flag=1: *Alice@example.com ~bob@example.com\n")
		db.apply(t, removeMember(lower, uri(t, "sip:bob@Example.Com")))
		wantRooms(t, db.load(t), "sip:Chat@Example.com flag=1: *Alice@example.com\n")
		db.apply(t, deleteRoom(uri(t, "sip:CHAT@EXAMPLE.COM")))
		wantRooms(t, db.load(t), "")
		var n int
		if err := db.db.Get(&n, "SELECT COUNT(*) FROM "+db.d.table(db.cfg.MembersTable)); err != nil || n != 0 {
			t.Errorf("members left: %d %v", n, err)
		}
	})
}

// Many goroutines applying to different rooms at once (the daemon's shards).
func TestConcurrentApply(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		const workers, rounds = 6, 8
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				room := imc.URI{User: fmt.Sprintf("room%d", w), Host: "h"}
				owner := imc.URI{User: "owner", Host: "h"}
				if err := db.Apply(context.Background(), []imc.Change{createRoom(room, 0), addMember(room, owner, imc.MemberOwner)}); err != nil {
					errs <- err
					return
				}
				for i := range rounds {
					m := imc.URI{User: fmt.Sprintf("m%d", i), Host: "h"}
					if err := db.Apply(context.Background(), []imc.Change{addMember(room, m, 0), updateMember(room, m, imc.MemberAdmin)}); err != nil {
						errs <- err
					}
				}
				if err := db.Apply(context.Background(), []imc.Change{deleteRoom(room)}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		wantRooms(t, db.load(t), "")
	})
}

// A database that holds a lock past ApplyTimeout fails the command with
// ErrUnavailable in bounded time, and nothing of it is committed.
func TestApplyTimeout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		room, alice := uri(t, "sip:r@h"), uri(t, "sip:alice@h")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))

		// Another connection (for SQLite another process's worth: a second
		// pool on the file) holds a write lock.
		other, err := connect(context.Background(), db.cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		tx, err := other.db.BeginTxx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(other.q.updateRoom, 0, "r", "h"); err != nil {
			t.Fatal(err)
		}

		db.DB.cfg.ApplyTimeout = 300 * time.Millisecond
		start := time.Now()
		err = db.Apply(context.Background(), []imc.Change{addMember(room, uri(t, "sip:bob@h"), 0), updateRoom(room, imc.RoomPrivate)})
		t.Logf("%v", err)
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("Apply took %v with a 300ms timeout", d)
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Apply = %v, want ErrUnavailable", err)
		}
		tx.Rollback()
		db.DB.cfg.ApplyTimeout = 5 * time.Second
		wantRooms(t, db.load(t), "sip:r@h flag=0: *alice@h\n")
		// And the store works on.
		db.apply(t, addMember(room, uri(t, "sip:bob@h"), 0))
	})
}
