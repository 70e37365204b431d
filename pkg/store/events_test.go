package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

func sha256Prefix(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func TestEventKey(t *testing.T) {
	f := func(callID, cseq, tag, want string) {
		t.Helper()
		if got := EventKey(callID, cseq, tag); got != want {
			t.Errorf("EventKey(%q, %q, %q) = %s, want %s", callID, cseq, tag, got, want)
		}
		if !validEventKey(EventKey(callID, cseq, tag)) {
			t.Errorf("EventKey(%q, …) is not a valid key", callID)
		}
	}
	// The documented construction, and one value computed with sha256sum.
	f("call-1@host", "17", "tag", "76c3815a6218e66d55abab4dfb5957aa")
	f("abc", "1", "t1", sha256Prefix("abc\x001\x00t1\x00"))
	f("ab", "c1", "t1", sha256Prefix("ab\x00c1\x00t1\x00"))
	f("", "", "", sha256Prefix("\x00\x00\x00"))
	if EventKey("abc", "1", "t1") == EventKey("ab", "c1", "t1") {
		t.Error("the parts' boundaries do not count")
	}
	for _, k := range []string{"", "x", strings.Repeat("A", 32), strings.Repeat("0", 31), strings.Repeat("0", 33), strings.Repeat("g", 32)} {
		if validEventKey(k) {
			t.Errorf("validEventKey(%q)", k)
		}
	}
}

// Applying an event once commits its changes; applying it again, from the
// same store or another, changes nothing and is no error.
func TestApplyOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		room, alice, bob := uri(t, "sip:r@h"), uri(t, "sip:alice@h"), uri(t, "sip:bob@h")
		k1, k2, k3 := EventKey("call-1", "1", "a"), EventKey("call-2", "1", "a"), EventKey("call-3", "1", "a")
		f := func(key string, changes []imc.Change, wantApplied bool, wantErr error, wantState string) {
			t.Helper()
			applied, err := db.ApplyOnce(ctx, key, changes)
			if applied != wantApplied || !errors.Is(err, wantErr) {
				t.Errorf("ApplyOnce(%s…, %v) = %v, %v; want %v, %v", key[:6], changes, applied, err, wantApplied, wantErr)
			}
			wantRooms(t, db.load(t), wantState)
		}
		f(k1, []imc.Change{createRoom(room, 0), addMember(room, alice, imc.MemberOwner)}, true, nil, "sip:r@h flag=0: *alice@h\n")
		f(k1, []imc.Change{createRoom(room, 0), addMember(room, alice, imc.MemberOwner)}, false, nil, "sip:r@h flag=0: *alice@h\n")
		// A change set that fails stores no key: the event may come again.
		f(k2, []imc.Change{addMember(room, bob, 0), addMember(room, alice, 0)}, false, ErrConflict, "sip:r@h flag=0: *alice@h\n")
		f(k2, []imc.Change{addMember(room, bob, 0)}, true, nil, "sip:r@h flag=0: *alice@h bob@h\n")
		// No changes: the key alone.
		f(k3, nil, true, nil, "sip:r@h flag=0: *alice@h bob@h\n")
		f(k3, []imc.Change{removeMember(room, bob)}, false, nil, "sip:r@h flag=0: *alice@h bob@h\n")
		f("not-a-key", nil, false, ErrInvalidChange, "sip:r@h flag=0: *alice@h bob@h\n")
		if n := db.count(t, "SELECT COUNT(*) FROM {events}"); n != 3 {
			t.Errorf("%d keys stored, want 3", n)
		}
		for _, k := range []string{k1, k2, k3} {
			if ok, err := db.HasEvent(ctx, k); !ok || err != nil {
				t.Errorf("HasEvent(%s) = %v, %v", k, ok, err)
			}
		}
		if ok, err := db.HasEvent(ctx, EventKey("nope", "1", "a")); ok || err != nil {
			t.Errorf("HasEvent(unknown) = %v, %v", ok, err)
		}
	})
}

// Two stores (two pools, as two imcd) apply the same events at the same
// moment: each event is applied exactly once, and the loser is told so
// without an error.
func TestApplyOnceConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a := openHistory(t, engine)
		b := a.another(t)
		ctx := context.Background()
		const events = 30
		wins := make([][2]bool, events)
		errs := make(chan error, 2*events)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range events {
			room := imc.URI{User: fmt.Sprint("room", i), Host: "h"}
			owner := imc.URI{User: "owner", Host: "h"}
			// Applied twice, this change set would fail on the room's key.
			changes := []imc.Change{createRoom(room, 0), addMember(room, owner, imc.MemberOwner)}
			key := EventKey(fmt.Sprint("call-", i), "1", "tag")
			for side, db := range []*DB{a.DB, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					applied, err := db.ApplyOnce(ctx, key, changes)
					if err != nil {
						errs <- fmt.Errorf("event %d, store %d: %w", i, side, err)
					}
					wins[i][side] = applied
				}()
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		aWon := 0
		for i, w := range wins {
			if w[0] == w[1] {
				t.Errorf("event %d: applied by a: %v, by b: %v; want exactly one", i, w[0], w[1])
			}
			if w[0] {
				aWon++
			}
		}
		t.Logf("store a won %d of %d events", aWon, events)
		if got := len(a.load(t)); got != events {
			t.Errorf("%d rooms, want %d", got, events)
		}
	})
}

// MarkEvents stores a batch of keys and says which were new: not those
// stored before, nor a key's second occurrence in the batch.
func TestMarkEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		k := func(i int) string { return EventKey(fmt.Sprint("c", i), "1", "t") }
		if _, err := db.ApplyOnce(ctx, k(2), nil); err != nil {
			t.Fatal(err)
		}
		f := func(keys []string, want string) {
			t.Helper()
			fresh, err := db.MarkEvents(ctx, keys)
			if err != nil {
				t.Fatalf("MarkEvents: %v", err)
			}
			if g := fmt.Sprint(fresh); g != want {
				t.Errorf("MarkEvents = %s, want %s", g, want)
			}
		}
		f([]string{k(1), k(2), k(3), k(1), k(4)}, "[true false true false true]")
		f([]string{k(4), k(5)}, "[false true]")
		f(nil, "[]")
		var many []string
		for i := range historyChunkLines + 10 {
			many = append(many, k(100+i))
		}
		many = append(many, k(1))
		fresh, err := db.MarkEvents(ctx, many)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range fresh {
			if f != (i < len(many)-1) {
				t.Errorf("key %d of %d fresh = %v", i, len(many), f)
			}
		}
		if _, err := db.MarkEvents(ctx, []string{k(9), "bad"}); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("MarkEvents with a bad key = %v", err)
		}
		if ok, _ := db.HasEvent(ctx, k(9)); ok {
			t.Error("a refused batch stored a key")
		}
	})
}

// Two stores mark overlapping batches at once: every key is new to exactly
// one of them.
func TestMarkEventsConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a := openHistory(t, engine)
		b := a.another(t)
		const rounds, perBatch = 10, 40
		for r := range rounds {
			keys := make([]string, perBatch)
			for i := range keys {
				keys[i] = EventKey(fmt.Sprint("r", r, "-", i), "1", "t")
			}
			// b sees them in the other order.
			rev := make([]string, perBatch)
			for i := range keys {
				rev[perBatch-1-i] = keys[i]
			}
			var fa, fb []bool
			var ea, eb error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); fa, ea = a.MarkEvents(context.Background(), keys) }()
			go func() { defer wg.Done(); fb, eb = b.MarkEvents(context.Background(), rev) }()
			wg.Wait()
			if ea != nil || eb != nil {
				t.Fatalf("round %d: %v / %v", r, ea, eb)
			}
			for i := range keys {
				if fa[i] == fb[perBatch-1-i] {
					t.Errorf("round %d key %d: new to a %v, to b %v", r, i, fa[i], fb[perBatch-1-i])
				}
			}
		}
	})
}

func TestPurgeEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		var keys []string
		for i := range 7 {
			keys = append(keys, EventKey(fmt.Sprint("c", i), "1", "t"))
		}
		if _, err := db.MarkEvents(ctx, keys); err != nil {
			t.Fatal(err)
		}
		// Three of them a day old.
		db.exec(t, "UPDATE {events} SET time_ms = time_ms - 86400000 WHERE event_key IN (?, ?, ?)", keys[0], keys[3], keys[5])
		n, err := db.PurgeEvents(ctx, time.Now().Add(-time.Hour), 2)
		if err != nil || n != 3 {
			t.Errorf("PurgeEvents = %d, %v; want 3", n, err)
		}
		fresh, err := db.MarkEvents(ctx, keys)
		if err != nil || fmt.Sprint(fresh) != "[true false false true false true false]" {
			t.Errorf("after the purge, MarkEvents = %v, %v", fresh, err)
		}
		if n, err := db.PurgeEvents(ctx, time.Now().Add(time.Hour), 0); err != nil || n != 7 {
			t.Errorf("PurgeEvents of all = %d, %v", n, err)
		}
	})
}
