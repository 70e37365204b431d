package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The inviter is told the truth (issue 22): an invitation its invitee
// cannot get now waits for them, and the inviter is told so, and for how
// long; then whether it reached them or was withdrawn.

const manager1 = "sip:chat-manager@127.0.0.1"

// toldAlice waits until alice has been told n things since the fake's
// last Reset and returns them, in order.
func toldAlice(t *testing.T, f *opensipstest.Server, n int) []string {
	t.Helper()
	waitUntil(t, "alice told", 20*time.Second, func() bool { return len(f.BodiesTo(alice)) >= n })
	return f.BodiesTo(alice)
}

// TestInvitationWaitsForInvitee: eve never answers (tm's fr_timeout ends
// her invitation 408): alice is told that eve cannot be reached now and
// that the invitation waits for her, for member_queue_age; when eve sends
// a MESSAGE she is back, gets the invitation, and alice is told it
// reached her; eve accepts.
func TestInvitationWaitsForInvitee(t *testing.T) {
	const eve = "sip:eve@127.0.0.1"
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"member_queue_age = 2h", "unreachable_retry = 1h", "unreachable_retry_max = 1h"}})
	step(t, f, alice, manager1, room1, "#create chat-1 private", want{to: alice, body: "*** room was created", reply: true})
	f.SetNoAnswer(eve)
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#invite eve")); err != nil {
		t.Fatal(err)
	}
	told := toldAlice(t, f, 2)
	if want := []string{"*** invitation sent to <" + eve + ">",
		"*** <" + eve + "> cannot be reached now (408 Request Timeout): the invitation waits for them for up to 2 hours, and you will be told whether it reached them"}; strings.Join(told, "\n") != strings.Join(want, "\n") {
		t.Fatalf("alice was told %q, want %q", told, want)
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`); !strings.Contains(got, "eve") {
		t.Fatalf("eve is no longer invited: %s", got)
	}

	f.ClearRules()
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(eve, manager1, "#rooms")); err != nil { // eve is back
		t.Fatal(err)
	}
	told = toldAlice(t, f, 1)
	if len(told) != 1 || !strings.HasPrefix(told[0], "*** the invitation reached <"+eve+"> after waiting ") {
		t.Fatalf("alice was told %q, want that it reached eve", told)
	}
	if bodies := f.BodiesTo(eve); !strings.Contains(strings.Join(bodies, "\n"), "INVITE from: alice@127.0.0.1 to "+room1) {
		t.Fatalf("eve got %q: no invitation", bodies)
	}
	step(t, f, eve, room1, room1, "#accept",
		want{to: alice, body: "*** <" + eve + "> has joined the room"}, want{to: eve, body: "*** <" + eve + "> has joined the room", reply: true})
}

// TestInvitationWithdrawnWhenInviteeStaysAway: frank's MESSAGEs end 480
// and he does not come back within member_queue_age: alice is told the
// invitation waits, then that it was withdrawn, and frank is no longer
// invited.
func TestInvitationWithdrawnWhenInviteeStaysAway(t *testing.T) {
	const frank = "sip:frank@127.0.0.1"
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"member_queue_age = 2s", "unreachable_retry = 1h", "unreachable_retry_max = 1h"}})
	step(t, f, alice, manager1, room1, "#create chat-1 private", want{to: alice, body: "*** room was created", reply: true})
	f.SetStatus(frank, "480 Temporarily Unavailable")
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#invite frank")); err != nil {
		t.Fatal(err)
	}
	told := toldAlice(t, f, 3)
	if len(told) != 3 || told[0] != "*** invitation sent to <"+frank+">" ||
		!strings.HasPrefix(told[1], "*** <"+frank+"> cannot be reached now (480 Temporarily Unavailable): the invitation waits for them for up to ") ||
		!strings.HasPrefix(told[2], "*** <"+frank+"> could not be reached for ") || !strings.HasSuffix(told[2], ": the invitation was withdrawn") {
		t.Fatalf("alice was told %q", told)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for strings.Contains(p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`), "frank") {
		select {
		case <-ctx.Done():
			t.Fatal("frank is still invited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
