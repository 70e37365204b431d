package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// BenchmarkSubmitChat is the daemon's own work for one chat line, from
// Submit to done: the flood guards, the shard's queue, the engine and, with
// the history, numbering the line and queueing it for the writer. The room
// has one member, so that no notice goes to delivery; the duplicate filter
// is off, so that one event can be submitted again and again.
func BenchmarkSubmitChat(b *testing.B) {
	for _, history := range []string{config.HistoryOff, config.HistoryOn} {
		b.Run("history="+history, func(b *testing.B) { benchSubmitChat(b, history) })
	}
}

func benchSubmitChat(b *testing.B, history string) {
	f := opensipstest.New(b, opensipstest.Options{})
	cfg := testConfig(b, f, b.TempDir())
	cfg.History = history
	cfg.RateLimit, cfg.FanoutLimit, cfg.DedupWindow = 0, 0, 0
	d := New(cfg, slog.New(slog.DiscardHandler))
	if err := d.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	done := make(chan error, 1)
	finish := func(err error) { done <- err }
	submit := func(body, ruri string) {
		ev := opensips.Event{Req: imc.Request{From: alice, RURI: ruri, To: ruri, Body: body, ContentType: "text/plain"}}
		if err := d.Submit(ev, finish); err != nil {
			b.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				b.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			b.Fatalf("%q not done within 5 s", body)
		}
	}
	submit("#create chat-1", manager)
	ev := opensips.Event{Req: imc.Request{From: alice, RURI: room1, To: room1, Body: "hello", ContentType: "text/plain"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Submit(ev, finish); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
