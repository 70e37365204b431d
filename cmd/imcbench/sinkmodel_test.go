package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// TestSinkModel: the modelled OpenSIPS drops what its receive buffer has
// no room for (never answered), serves the rest at its rate, and answers
// the members who never answer with a 408 after fr_timeout, without
// counting them in the recorder.
func TestSinkModel(t *testing.T) {
	s, err := startModelSink(0, false, clock{base: time.Now()}, &opensipsModel{recvBuffer: 8, rate: 50, deadPrefix: "gone", frTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	c := &opensips.MIClient{Addr: s.addr(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 2 * time.Second}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := newRecorder(100, false)
	s.attach(rec, 1)
	var mu sync.Mutex
	outs := map[string]int{}
	done := func(_ uint64, o delivery.Outcome, _ bool) {
		mu.Lock()
		outs[o.Class()]++
		mu.Unlock()
	}
	room := imc.URI{User: "r", Host: benchDomain}
	const n = 30
	for i := range n {
		user := "live"
		if i%2 == 1 {
			user = "gone7"
		}
		note := &imc.Notice{From: room, To: imc.URI{User: user, Host: benchDomain}, Body: "<a@bench.test>: bench " + string(rune('0'+i%10)) + " x", ContentType: "text/plain"}
		if err := c.Send(note, uint64(i), done); err != nil {
			t.Fatal(err)
		}
	}
	c.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		total := outs["2xx"] + outs["4xx"] + outs["timeout"]
		mu.Unlock()
		if total == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes %v", outs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	drops, arrived, dead := s.dropped.Load(), s.delivered.Load(), s.dead.Load()
	// 30 back to back into a buffer of 8 served at 50/s: most are dropped
	// and time out; each that arrived was answered, 408 for the dead ones.
	if drops < 10 || int(drops)+int(arrived) != n || outs["timeout"] != int(drops) || outs["2xx"]+outs["4xx"] != int(arrived) || int64(outs["4xx"]) != dead {
		t.Fatalf("dropped %d, arrived %d (dead %d), outcomes %v", drops, arrived, dead, outs)
	}
	if got := rec.total(100); int64(got) != arrived-dead {
		t.Fatalf("recorder noted %d, want the %d live arrivals", got, arrived-dead)
	}
}
