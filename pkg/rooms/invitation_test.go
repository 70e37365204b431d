package rooms

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

var st480 = delivery.Outcome{Status: 480, Reason: "480 Temporarily Unavailable"}

// invitee reports whether carol is a member of chat-1 (pending or not).
func (h *harness) carolIn() bool {
	_, ok := h.rt.View().Room("chat-1@example.com").Member(imc.URI{User: "carol", Host: "example.com"})
	return ok
}

// withLine reports whether lines has one that starts with prefix.
func withLine(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// TestInvitationKeptThenDelivered: an invitation kept for an invitee who
// cannot be reached now: the inviter is told it waits for them, for how
// long, and later that it reached them; the invitee stays pending.
func TestInvitationKeptThenDelivered(t *testing.T) {
	h := openSQLite(t, options{})
	h.send(alice, manager, "#create chat-1 private", 1)
	h.out.away[carol] = st480
	h.out.reset()
	h.raise(alice, room1, "#invite carol", nil)
	got := h.out.wait(t, "invite", 3) // invitation, "sent", "waits"
	waits := alice + ": *** <" + carol + "> cannot be reached now (480 Temporarily Unavailable): the invitation waits for them for up to "
	if !withLine(got, waits) {
		t.Fatalf("notices %q, want one starting %q", got, waits)
	}
	h.out.reset()
	h.out.end(carol, delivery.Result{Kind: delivery.Delivered, Held: true, Kept: true, Attempts: 2, Waited: 3 * time.Minute})
	got = h.out.wait(t, "delivered", 1)
	same(t, "delivered", got, alice+": *** the invitation reached <"+carol+"> after waiting 3 minutes for them")
	if !h.carolIn() {
		t.Fatal("carol is no longer invited")
	}
	// Only the batch with the invitation asked to hear of notices kept.
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if h.out.keptSeen != 1 { // "invitation sent" went in the invitation's batch
		t.Fatalf("%d notices of batches with Kept to members not away, want 1", h.out.keptSeen)
	}
}

// TestInvitationKeptThenExpired: an invitation kept too long is dropped by
// delivery: it is withdrawn and the inviter told how long the invitee
// could not be reached. A chat line's fan-out to a member away does not
// ask to hear of it.
func TestInvitationKeptThenExpired(t *testing.T) {
	h := openSQLite(t, options{})
	h.aliceAndBob()
	h.out.away[carol] = delivery.Outcome{}
	h.out.reset()
	h.raise(alice, room1, "#invite carol", nil)
	got := h.out.wait(t, "invite", 3)
	waits := alice + ": *** <" + carol + "> cannot be reached now: the invitation waits for them"
	if !withLine(got, waits) {
		t.Fatalf("notices %q, want one starting %q", got, waits)
	}
	h.out.away[bob] = st480
	h.out.reset()
	h.send(alice, room1, "hello", 1) // to bob, away: not kept through Kept
	h.out.mu.Lock()
	if n := len(h.out.kept); n != 1 {
		h.out.mu.Unlock()
		t.Fatalf("%d notices kept through Kept, want only the invitation", n)
	}
	h.out.mu.Unlock()
	h.out.reset()
	h.out.end(carol, delivery.Result{Kind: delivery.Dropped, Held: true, Kept: true, Waited: 10*time.Minute + 2*time.Second})
	got = h.out.wait(t, "expired", 1)
	same(t, "expired", got, alice+": *** <"+carol+"> could not be reached for 10 minutes 2 seconds: the invitation was withdrawn")
	eventually(t, "carol no longer invited", func() bool { return !h.carolIn() })
}
