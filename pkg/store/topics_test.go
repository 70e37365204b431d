package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

func TestTopics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		a, b := uri(t, "sip:A@h"), uri(t, "sip:b@h")
		set := func(room imc.URI, text string, ms int64) {
			t.Helper()
			if err := db.SetTopic(ctx, Topic{Room: room, Text: []byte(text), SetBy: "sip:owner@h", Time: time.UnixMilli(ms)}); err != nil {
				t.Fatalf("SetTopic: %v", err)
			}
		}
		want := func(w string) {
			t.Helper()
			ts, err := db.Topics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for k, tp := range ts {
				lines = append(lines, fmt.Sprintf("%s=%s %q %s %d", k, tp.Room, tp.Text, tp.SetBy, tp.Time.UnixMilli()))
			}
			sort.Strings(lines)
			if g := strings.Join(lines, "\n"); g != w {
				t.Errorf("Topics:\n%s\nwant:\n%s", g, w)
			}
		}
		set(a, "first \xff\x00", 1)
		set(b, "bee", 2)
		want("a@h=sip:A@h \"first \\xff\\x00\" sip:owner@h 1\nb@h=sip:b@h \"bee\" sip:owner@h 2")
		set(a, "second", 3)
		set(b, "", 4)
		want("a@h=sip:A@h \"second\" sip:owner@h 3")
		if err := db.SetTopic(ctx, Topic{Room: a, Text: []byte("x"), SetBy: "bad\x00"}); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("SetTopic with a bad set_by = %v", err)
		}
		if err := db.SetTopic(ctx, Topic{Room: a, Text: make([]byte, MaxBodyLen+1)}); !errors.Is(err, imc.ErrTooLong) {
			t.Errorf("SetTopic too long = %v", err)
		}
		want("a@h=sip:A@h \"second\" sip:owner@h 3")
	})
}

func TestMarks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		r1, r2 := uri(t, "sip:r1@h"), uri(t, "sip:r2@h")
		alice, bob := uri(t, "sip:alice@h"), uri(t, "sip:bob@h")
		dumpMarks := func(ms []Mark) string {
			var s []string
			for _, m := range ms {
				s = append(s, fmt.Sprintf("%s %s %d", m.Room, m.Member, m.Seq))
			}
			sort.Strings(s)
			return strings.Join(s, "; ")
		}
		f := func(room imc.URI, want string) {
			t.Helper()
			var ms []Mark
			var err error
			if room.IsZero() {
				ms, err = db.AllMarks(ctx)
			} else {
				ms, err = db.Marks(ctx, room)
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := dumpMarks(ms); g != want {
				t.Errorf("marks of %q: %s, want %s", room, g, want)
			}
		}
		if err := db.SetMarks(ctx, []Mark{{r1, alice, 3}, {r1, bob, 4}, {r2, alice, 9}, {r1, uri(t, "sip:ALICE@h"), 5}}); err != nil {
			t.Fatal(err)
		}
		f(r1, "sip:r1@h sip:ALICE@h 5; sip:r1@h sip:bob@h 4")
		f(imc.URI{}, "sip:r1@h sip:ALICE@h 5; sip:r1@h sip:bob@h 4; sip:r2@h sip:alice@h 9")
		if err := db.SetMarks(ctx, []Mark{{r1, bob, 7}}); err != nil {
			t.Fatal(err)
		}
		f(r1, "sip:r1@h sip:ALICE@h 5; sip:r1@h sip:bob@h 7")
		if err := db.DeleteMarks(ctx, []Mark{{Room: r1, Member: alice}, {Room: r2, Member: bob}}); err != nil {
			t.Fatal(err)
		}
		f(imc.URI{}, "sip:r1@h sip:bob@h 7; sip:r2@h sip:alice@h 9")
		var many []Mark
		for i := range historyChunkLines + 3 {
			many = append(many, Mark{r2, imc.URI{User: fmt.Sprint("u", i), Host: "h"}, int64(i)})
		}
		if err := db.SetMarks(ctx, many); err != nil {
			t.Fatal(err)
		}
		if ms, err := db.Marks(ctx, r2); err != nil || len(ms) != len(many)+1 {
			t.Errorf("Marks after %d set: %d, %v", len(many), len(ms), err)
		}
		if err := db.SetMarks(ctx, []Mark{{Room: r1}}); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("SetMarks without a member = %v", err)
		}
	})
}
