package history

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store"
)

// openStore opens a temporary SQLite database with the history tables.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite://" + filepath.Join(t.TempDir(), "imcd.db"),
		CreateTables: true, History: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openWriter opens a writer into st and shuts it down at the end.
func openWriter(t *testing.T, st store.HistoryStore, cfg Config, written map[string]int64) *Writer {
	t.Helper()
	w := New(st, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg, written)
	if err := w.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Shutdown(context.Background()) })
	return w
}

var room = imc.URI{User: "chat-1", Host: "example.com"}

func line(seq int64, text string) store.HistoryLine {
	return store.HistoryLine{Room: room, Seq: seq, Kind: store.HistoryChat, Sender: "sip:alice@example.com",
		Time: time.Now(), ContentType: "text/plain", Body: []byte(text)}
}

// TestWriterWritesInOrder: lines queued are written, in order, and a query
// waiting for them (WaitWritten) returns once they are.
func TestWriterWritesInOrder(t *testing.T) {
	db := openStore(t)
	w := openWriter(t, db, Config{}, nil)
	for i := range 10 {
		w.Add(line(int64(i+1), "line"))
	}
	w.WaitWritten(room.Key(), 10)
	if got := w.WrittenUpTo(room.Key()); got != 10 {
		t.Fatalf("written up to %d, want 10", got)
	}
	lines, err := db.LastLines(context.Background(), room, 0, 20)
	if err != nil || len(lines) != 10 || lines[0].Seq != 1 || lines[9].Seq != 10 {
		t.Fatalf("stored %v, %v", lines, err)
	}
	if w.Written() != 10 || w.Dropped() != 0 {
		t.Fatalf("written %d dropped %d", w.Written(), w.Dropped())
	}
}

// TestWriterForget: a destroyed room's lines, queued or written, are
// deleted, and a new room of the same name does not take the old one's
// numbering for its own.
func TestWriterForget(t *testing.T) {
	db := openStore(t)
	w := openWriter(t, db, Config{}, map[string]int64{})
	w.Add(line(1, "old"))
	w.Add(line(2, "old"))
	w.Forget(room)
	w.Add(line(1, "new"))
	w.WaitWritten(room.Key(), 1)
	lines, err := db.LastLines(context.Background(), room, 0, 20)
	if err != nil || len(lines) != 1 || string(lines[0].Body) != "new" {
		t.Fatalf("stored %v, %v", lines, err)
	}
}

// TestWriterPurge: Purge keeps the newest KeepLines of each room.
func TestWriterPurge(t *testing.T) {
	db := openStore(t)
	w := openWriter(t, db, Config{KeepLines: 3}, nil)
	for i := range 10 {
		w.Add(line(int64(i+1), "line"))
	}
	w.WaitWritten(room.Key(), 10)
	w.Purge(context.Background(), time.Now())
	lines, err := db.LastLines(context.Background(), room, 0, 20)
	if err != nil || len(lines) != 3 || lines[0].Seq != 8 {
		t.Fatalf("after the purge %v, %v", lines, err)
	}
	if w.Purged() != 7 {
		t.Fatalf("purged %d, want 7", w.Purged())
	}
}

// TestWriterMarks: marks are stored and deleted in the order they came.
func TestWriterMarks(t *testing.T) {
	db := openStore(t)
	w := openWriter(t, db, Config{}, nil)
	bob := imc.URI{User: "bob", Host: "example.com"}
	w.Mark(store.Mark{Room: room, Member: bob, Seq: 4}, true)
	w.Mark(store.Mark{Room: room, Member: bob, Seq: 4}, false)
	w.Mark(store.Mark{Room: room, Member: bob, Seq: 7}, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := db.Marks(context.Background(), room)
		if err == nil && len(ms) == 1 && ms[0].Seq == 7 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("marks %v, %v; want the one of seq 7", ms, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
