package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestPerRoomOrder: lines posted to a room reach every member in the order
// they were posted, while another room is busy at the same time.
func TestPerRoomOrder(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"rate_limit = 0"}})
	r2 := "sip:chat-2@127.0.0.1"
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, room1, room1, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	step(t, f, carol, r2, r2, "#create chat-2", want{to: carol, body: "*** room was created", reply: true})
	step(t, f, dave, r2, r2, "#join",
		want{to: carol, body: "*** <" + dave + "> has joined the room"}, want{to: dave, body: "*** <" + dave + "> has joined the room", reply: true})

	f.Reset()
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := f.Raise(opensipstest.NewEvent(alice, room1, fmt.Sprintf("line %03d", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Raise(opensipstest.NewEvent(carol, r2, fmt.Sprintf("other %03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := f.WaitDeliveries(ctx, 2*n)
	if err != nil {
		t.Fatalf("%v after %d deliveries", err, len(f.Deliveries()))
	}
	next := map[string]int{}
	for _, d := range ds {
		var prefix string
		switch d.To {
		case bob:
			prefix = "<alice@127.0.0.1>: line "
		case dave:
			prefix = "<carol@127.0.0.1>: other "
		default:
			t.Fatalf("unexpected delivery to %s: %s", d.To, d.Body)
		}
		want := fmt.Sprintf("%s%03d", prefix, next[d.To])
		if d.Body != want {
			t.Fatalf("%s got %q, want %q: order lost", d.To, d.Body, want)
		}
		next[d.To]++
	}
	_ = p
}

// TestUnusableSender: an event whose From is not a usable SIP URI cannot be
// answered; it is refused, logged with its Call-ID and counted, and imcd
// goes on.
func TestUnusableSender(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	ev := opensipstest.NewEvent("sip:al ice@127.0.0.1", room1, "#create chat-1")
	ev.CallID = "bad-from-1@lab"
	if _, err := f.Raise(ev); err != nil {
		t.Fatal(err)
	}
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	if v := p.metric(t, `opensips_imc_events_total{result="decode_error",transport="stream"}`); v != 1 {
		t.Errorf("decode errors %g, want 1", v)
	}
	if !strings.Contains(p.log.String(), "bad-from-1@lab") {
		t.Errorf("the refusal is not logged with its Call-ID:\n%s", p.log.String())
	}
}
