package mi

import (
	"context"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// historyReader is the daemon's side of imc:history.
type historyReader func(room imc.URI, n int) ([]imc.StoredLine, int64, error)

func (f historyReader) History(_ context.Context, room imc.URI, n int) ([]imc.StoredLine, int64, error) {
	return f(room, n)
}

// TestHistoryCommand: imc:history answers the lines the reader gives, each
// body escaped byte for byte (invalid UTF-8 passes through), and maps the
// reader's refusals to the native codes.
func TestHistoryCommand(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 1, 5e6, time.FixedZone("CET", 3600))
	var asked int
	lines := historyReader(func(room imc.URI, n int) ([]imc.StoredLine, int64, error) {
		asked = n
		switch room.User {
		case "chat-none":
			return nil, 0, imc.ErrNoSuchRoom
		case "chat-off":
			return nil, 0, ErrNoHistory
		}
		return []imc.StoredLine{
			{Seq: 41, Sender: "sip:alice@example.com", At: at, ContentType: "text/plain", Body: "caf\xe9 \"latin-1\""},
			{Seq: 42, Sender: "sip:bob@example.com", At: at.Add(time.Second), ContentType: "text/html", Body: "<b>\n</b>"},
		}, 7, nil
	})
	reg := NewRegistry()
	if err := reg.Register(HistoryCommand(lines)); err != nil {
		t.Fatal(err)
	}
	s := &Server{Registry: reg, Logger: testLogger}
	f := func(req string, wantN int, want string) {
		t.Helper()
		asked = 0
		got := s.Handle(context.Background(), []byte(req))
		sameBytes(t, req, got, []byte(want))
		if asked != wantN {
			t.Errorf("%s: the reader was asked for %d lines, want %d", req, asked, wantN)
		}
	}
	found := func(id string) string {
		return `{"jsonrpc":"2.0","result":{"ROOM":"sip:chat-1@example.com","TOTAL":7,"LINES":[` +
			`{"SEQ":41,"TIME":"2026-11-29T11:00:01.005Z","SENDER":"sip:alice@example.com","CONTENT_TYPE":"text/plain","BODY":"caf` + "\xe9" + ` \"latin-1\""},` +
			`{"SEQ":42,"TIME":"2026-11-29T11:00:02.005Z","SENDER":"sip:bob@example.com","CONTENT_TYPE":"text/html","BODY":"<b>\n</b>"}]},"id":` + id + `}`
	}
	f(`{"jsonrpc":"2.0","method":"imc:history","params":{"room":"sip:chat-1@example.com","lines":"2"},"id":1}`, 2, found("1"))
	f(`{"jsonrpc":"2.0","method":"imc_history","params":["sip:chat-1@example.com"],"id":2}`, DefaultHistoryLines, found("2"))
	f(`{"jsonrpc":"2.0","method":"imc:history","params":{"room":"sip:chat-1@example.com","lines":"100000"},"id":3}`, maxHistoryLines, found("3"))
	f(`{"jsonrpc":"2.0","method":"imc:history","params":{"room":"sip:chat-1@example.com","lines":"0"},"id":4}`, 0,
		`{"jsonrpc":"2.0","error":{"code":400,"message":"bad param: lines","data":"a number from 1 to 1000"},"id":4}`)
	f(`{"jsonrpc":"2.0","method":"imc:history","params":{"room":"sip:chat-none@example.com"},"id":5}`, DefaultHistoryLines,
		`{"jsonrpc":"2.0","error":{"code":404,"message":"no such room"},"id":5}`)
	f(`{"jsonrpc":"2.0","method":"imc:history","params":{"room":"sip:chat-off@example.com"},"id":6}`, DefaultHistoryLines,
		`{"jsonrpc":"2.0","error":{"code":400,"message":"no history","data":"history is off on this imcd"},"id":6}`)
}
