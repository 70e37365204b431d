package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// openHistory opens a store with the history and events tables on.
func openHistory(t testing.TB, engine string) *testDB {
	t.Helper()
	return openWith(t, historyConfig(t, engine))
}

// line makes a history line at a fixed time plus seq seconds.
func line(room imc.URI, seq int64, body string) HistoryLine {
	return HistoryLine{Room: room, Seq: seq, Kind: HistoryChat, Sender: "sip:alice@example.com",
		Time: time.UnixMilli(1700000000123 + seq*1000), ContentType: "text/plain", Body: []byte(body)}
}

// dumpLines renders lines for comparison, the body in Go syntax so that
// every byte shows.
func dumpLines(lines []HistoryLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s #%d k%d %s %d %s %q\n", l.Room, l.Seq, l.Kind, l.Sender, l.Time.UnixMilli(), l.ContentType, l.Body)
	}
	return b.String()
}

// seqsOf lists the lines' seqs, "1,2,3".
func seqsOf(lines []HistoryLine) string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = fmt.Sprint(l.Seq)
	}
	return strings.Join(s, ",")
}

// Lines come back byte for byte (invalid UTF-8, NUL, empty, large), in seq
// order, from the right room; appending a batch again writes nothing.
func TestHistoryRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		room, other := uri(t, "sip:Chat-1@example.com"), uri(t, "sip:chat-2@example.com")
		big := bytes.Repeat([]byte{0, 0xff, 'a', 0xc3}, 30000)
		lines := []HistoryLine{
			line(room, 1, "hello"),
			line(room, 2, "caf\xc3\xa9 \xff\xfe not utf-8 \x00 nul"),
			line(room, 3, ""),
			{Room: room, Seq: 4, Kind: HistoryTopic, Sender: "sip:bob@h:5060", Time: time.UnixMilli(-5), ContentType: "text/plain; charset=\"utf-8\"", Body: big},
			line(other, 1, "elsewhere"),
			{Room: room, Seq: 5, Kind: HistoryNotice, Sender: "sip:chat-1@example.com", Time: time.UnixMilli(1), ContentType: "text/plain"},
		}
		n, err := db.AppendHistory(ctx, lines)
		if err != nil || n != len(lines) {
			t.Fatalf("AppendHistory = %d, %v", n, err)
		}
		want := dumpLines([]HistoryLine{lines[0], lines[1], lines[2], lines[3], lines[5]})
		got, err := db.History(ctx, room, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if g := dumpLines(got); g != want {
			t.Errorf("History:\n%.2000s\nwant:\n%.2000s", g, want)
		}
		if !bytes.Equal(got[3].Body, big) || got[2].Body == nil {
			t.Errorf("bodies not kept exactly: %d bytes, empty body %v", len(got[3].Body), got[2].Body)
		}
		f := func(after int64, n int, last bool, wantSeqs string) {
			t.Helper()
			var got []HistoryLine
			var err error
			if last {
				got, err = db.LastLines(ctx, room, after, n)
			} else {
				got, err = db.History(ctx, room, after, n)
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := seqsOf(got); g != wantSeqs {
				t.Errorf("after %d, n %d, last %v: seqs %s, want %s", after, n, last, g, wantSeqs)
			}
		}
		f(0, 2, false, "1,2")
		f(2, 2, false, "3,4")
		f(4, 10, false, "5")
		f(5, 10, false, "")
		f(0, 2, true, "4,5")
		f(3, 10, true, "4,5")
		f(0, 0, true, "")
		f(1, 3, true, "3,4,5")
		if n, err := db.CountHistory(ctx, room, 2); err != nil || n != 3 {
			t.Errorf("CountHistory after 2 = %d, %v; want 3", n, err)
		}
		// What a member missed: between two seqs, the newest n, not their
		// own lines (line 4 is bob's, line 5 the room's).
		missed := func(sender string, after, upTo int64, n int, wantSeqs string, wantCount int64) {
			t.Helper()
			got, err := db.MissedLines(ctx, room, sender, after, upTo, n)
			if err != nil {
				t.Fatal(err)
			}
			c, err := db.CountMissed(ctx, room, sender, after, upTo)
			if g := seqsOf(got); g != wantSeqs || c != wantCount || err != nil {
				t.Errorf("missed by %s in (%d, %d], n %d: seqs %s, count %d, %v; want %s, %d", sender, after, upTo, n, g, c, err, wantSeqs, wantCount)
			}
		}
		missed("sip:carol@example.com", 0, 5, 10, "1,2,3,4,5", 5)
		missed("sip:carol@example.com", 1, 4, 2, "3,4", 3)
		missed("sip:bob@h:5060", 1, 4, 10, "2,3", 2)
		missed("sip:alice@example.com", 0, 5, 10, "4,5", 2)
		missed("sip:carol@example.com", 3, 3, 10, "", 0)
		missed("sip:carol@example.com", 0, 5, 0, "", 5)
		seqs, err := db.LastSeqs(ctx)
		if err != nil || fmt.Sprint(seqs) != "map[chat-1@example.com:5 chat-2@example.com:1]" {
			t.Errorf("LastSeqs = %v, %v", seqs, err)
		}
		if s, err := db.LastSeq(ctx, room); err != nil || s != 5 {
			t.Errorf("LastSeq = %d, %v", s, err)
		}
		if s, err := db.LastSeq(ctx, uri(t, "sip:empty@h")); err != nil || s != 0 {
			t.Errorf("LastSeq of a room without lines = %d, %v", s, err)
		}

		// Again, after a doubt: nothing written twice, nothing lost.
		more := append(lines[:len(lines):len(lines)], line(room, 6, "new"))
		if n, err := db.AppendHistory(ctx, more); err != nil || n != 1 {
			t.Errorf("AppendHistory again = %d, %v; want 1 new line", n, err)
		}
		if c := db.count(t, "SELECT COUNT(*) FROM {history}"); c != 7 {
			t.Errorf("%d rows, want 7", c)
		}
		if engine == dburl.MySQL {
			// The collation makes room lookups ignore letter case.
			if got, _ := db.History(ctx, uri(t, "sip:CHAT-1@example.com"), 5, 9); len(got) != 1 {
				t.Errorf("History by other letter case: %v", got)
			}
		}
	})
}

// Batches over one statement's limits go in several INSERTs in one
// transaction; a bad line refuses the whole batch before any SQL.
func TestHistoryBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		room := uri(t, "sip:r@h")
		var lines []HistoryLine
		for i := range 3*historyChunkLines + 5 {
			lines = append(lines, line(room, int64(i+1), fmt.Sprint("line ", i)))
		}
		// Bodies that fill more than one statement's bytes.
		for i := range 3 {
			lines = append(lines, line(room, int64(len(lines)+1), strings.Repeat(string(rune('a'+i)), historyChunkBytes/2+1)))
		}
		if n, err := db.AppendHistory(ctx, lines); err != nil || n != len(lines) {
			t.Fatalf("AppendHistory = %d, %v", n, err)
		}
		got, err := db.History(ctx, room, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := dumpLines(got), dumpLines(lines); g != w {
			t.Errorf("%d lines back, want %d; first difference in:\n%.500s", len(got), len(lines), g)
		}

		before := db.count(t, "SELECT COUNT(*) FROM {history}")
		f := func(l HistoryLine, want error) {
			t.Helper()
			batch := []HistoryLine{line(room, 9000, "fine"), l}
			if _, err := db.AppendHistory(ctx, batch); !errors.Is(err, want) {
				t.Errorf("AppendHistory %+v = %v, want %v", l.Sender, err, want)
			}
		}
		bad := line(room, 9001, "x")
		bad.Sender = "sip:caf\xc3\xa9@h"
		f(bad, ErrInvalidChange)
		bad = line(room, 9001, "x")
		bad.ContentType = "text/plain\r\nX: y"
		f(bad, ErrInvalidChange)
		bad = line(room, 0, "x")
		f(bad, ErrInvalidChange)
		bad = line(imc.URI{}, 1, "x")
		f(bad, ErrInvalidChange)
		bad = line(room, 9001, "")
		bad.Body = make([]byte, MaxBodyLen+1)
		f(bad, imc.ErrTooLong)
		bad = line(room, 9001, "x")
		bad.Sender = "sip:" + strings.Repeat("s", 252)
		f(bad, imc.ErrTooLong)
		bad = line(imc.URI{User: strings.Repeat("r", 60), Host: "h"}, 1, "x")
		f(bad, imc.ErrTooLong)
		if after := db.count(t, "SELECT COUNT(*) FROM {history}"); after != before {
			t.Errorf("refused batches wrote %d rows", after-before)
		}
	})
}

// Destroying a room deletes its history, topic and marks in the same
// transaction, so that a room created again starts from nothing; removing
// a member deletes their mark. A change set that fails deletes nothing.
func TestHistoryFollowsRooms(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		room, other := uri(t, "sip:doomed@h"), uri(t, "sip:kept@h")
		alice, bob := uri(t, "sip:alice@h"), uri(t, "sip:Bob@h")
		for _, r := range []imc.URI{room, other} {
			db.apply(t, createRoom(r, 0), addMember(r, alice, imc.MemberOwner), addMember(r, bob, 0))
			if _, err := db.AppendHistory(ctx, []HistoryLine{line(r, 1, "a"), line(r, 2, "b")}); err != nil {
				t.Fatal(err)
			}
			if err := db.SetTopic(ctx, Topic{Room: r, Text: []byte("topic"), SetBy: "sip:alice@h", Time: time.UnixMilli(5)}); err != nil {
				t.Fatal(err)
			}
			if err := db.SetMarks(ctx, []Mark{{r, alice, 1}, {r, bob, 2}}); err != nil {
				t.Fatal(err)
			}
		}
		state := func() string {
			return fmt.Sprintf("history %d, topics %d, marks %d",
				db.count(t, "SELECT COUNT(*) FROM {history} WHERE room = ?", room.String()),
				db.count(t, "SELECT COUNT(*) FROM {topics} WHERE room = ?", room.String()),
				db.count(t, "SELECT COUNT(*) FROM {marks} WHERE room = ?", room.String()))
		}
		// A failing change set (the member exists) rolls its deletions back.
		err := db.Apply(ctx, []imc.Change{removeMember(room, bob), deleteRoom(room), createRoom(room, 0), addMember(room, alice, imc.MemberOwner), addMember(room, alice, 0)})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("Apply = %v, want ErrConflict", err)
		}
		if s := state(); s != "history 2, topics 1, marks 2" {
			t.Errorf("after a failed change set: %s", s)
		}
		// The member's mark goes with the member, in any letter case.
		db.apply(t, removeMember(room, uri(t, "sip:bob@H")))
		if s := state(); s != "history 2, topics 1, marks 1" {
			t.Errorf("after removing bob: %s", s)
		}
		db.apply(t, deleteRoom(room))
		if s := state(); s != "history 0, topics 0, marks 0" {
			t.Errorf("after destroying the room: %s", s)
		}
		if n := db.count(t, "SELECT COUNT(*) FROM {history}") + db.count(t, "SELECT COUNT(*) FROM {marks}"); n != 4 {
			t.Errorf("the other room's rows: %d, want 4", n)
		}
		// A line the daemon had queued before the destroy, written after
		// it, is gone again once ForgetRoom runs.
		if _, err := db.AppendHistory(ctx, []HistoryLine{line(room, 3, "late")}); err != nil {
			t.Fatal(err)
		}
		if err := db.ForgetRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
		if s := state(); s != "history 0, topics 0, marks 0" {
			t.Errorf("after ForgetRoom: %s", s)
		}
		// Created again, the room numbers its lines from 1.
		db.apply(t, createRoom(room, 0), addMember(room, bob, imc.MemberOwner))
		if n, err := db.AppendHistory(ctx, []HistoryLine{line(room, 1, "fresh")}); err != nil || n != 1 {
			t.Errorf("first line of the new room: %d, %v", n, err)
		}
	})
}

// Purging by age and by count deletes exactly the lines it should, in as
// many small statements as it takes.
func TestPurgeHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openHistory(t, engine)
		ctx := context.Background()
		busy, quiet, gappy := uri(t, "sip:busy@h"), uri(t, "sip:quiet@h"), uri(t, "sip:gappy@h")
		var lines []HistoryLine
		for i := int64(1); i <= 25; i++ {
			lines = append(lines, line(busy, i, "b"))
		}
		for i := int64(1); i <= 3; i++ {
			lines = append(lines, line(quiet, i, "q"))
		}
		for _, i := range []int64{1, 2, 10, 20, 30} { // spans 30 seqs, holds 5 lines
			lines = append(lines, line(gappy, i, "g"))
		}
		if _, err := db.AppendHistory(ctx, lines); err != nil {
			t.Fatal(err)
		}
		seqs := func(room imc.URI) string {
			got, err := db.History(ctx, room, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			return seqsOf(got)
		}
		// Lines are 1 s apart from line(…, 1): older than line 6 of each room.
		cut := time.UnixMilli(1700000000123 + 6*1000)
		n, err := db.PurgeHistory(ctx, 0, cut, 2)
		if err != nil || n != 5+3+2 {
			t.Errorf("PurgeHistory by age = %d, %v; want 10", n, err)
		}
		if g := seqs(busy); g != "6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25" || seqs(quiet) != "" || seqs(gappy) != "10,20,30" {
			t.Errorf("after the age purge: busy %s, quiet %s, gappy %s", g, seqs(quiet), seqs(gappy))
		}
		n, err = db.PurgeHistory(ctx, 4, time.Time{}, 3)
		if err != nil || n != 16+0+0 {
			t.Errorf("PurgeHistory by count = %d, %v; want 16", n, err)
		}
		for r, want := range map[imc.URI]string{busy: "22,23,24,25", quiet: "", gappy: "10,20,30"} {
			if g := seqs(r); g != want {
				t.Errorf("%s after purging: %s, want %s", r, g, want)
			}
		}
		n, err = db.PurgeHistory(ctx, 2, time.Time{}, 0)
		if err != nil || n != 3 || seqs(busy) != "24,25" || seqs(gappy) != "20,30" {
			t.Errorf("PurgeHistory keeping 2 = %d, %v: %s / %s", n, err, seqs(busy), seqs(gappy))
		}
		if n, err := db.PurgeHistory(ctx, 2, time.Time{}, 0); err != nil || n != 0 {
			t.Errorf("PurgeHistory again = %d, %v", n, err)
		}
	})
}

// With history off, the methods refuse and Open never looks at the
// tables; with it on, a missing table is named with its script.
func TestHistoryConfig(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		cfg := testConfig(t, engine)
		plain := openWith(t, cfg)
		if _, err := plain.AppendHistory(ctx, []HistoryLine{line(uri(t, "sip:r@h"), 1, "x")}); !errors.Is(err, ErrNotEnabled) {
			t.Errorf("AppendHistory with history off = %v", err)
		}
		if _, err := plain.ApplyOnce(ctx, EventKey("a", "1", "t"), nil); !errors.Is(err, ErrNotEnabled) {
			t.Errorf("ApplyOnce with events off = %v", err)
		}
		cfg.History = true
		cfg.CreateTables = false
		_, err := Open(ctx, cfg)
		if !errors.Is(err, ErrNoTables) || !strings.Contains(err.Error(), cfg.HistoryTable) || !strings.Contains(err.Error(), "imcd-history-create.sql") {
			t.Errorf("Open with history on, no history tables = %v", err)
		}
		// The standard tables are not touched by turning history on.
		withHistory := openWith(t, cfg)
		wantRooms(t, withHistory.load(t), "")
		cfg.Events = true
		cfg.CreateTables = false
		if _, err := Open(ctx, cfg); !errors.Is(err, ErrNoTables) || !strings.Contains(err.Error(), "imcd-events-create.sql") {
			t.Errorf("Open with events on, no events table = %v", err)
		}
		bad := cfg
		bad.TopicsTable = strings.ToUpper(cfg.HistoryTable)
		if _, err := Open(ctx, bad); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "topics_table") {
			t.Errorf("Open with two tables of one name = %v", err)
		}
	})
}
