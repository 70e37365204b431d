package rooms

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// TestConversation: commands are saved before anyone is told, chat goes
// to every other member, and the rooms in memory are what the store holds.
func TestConversation(t *testing.T) {
	h := openSQLite(t, options{})
	same(t, "create", h.send(alice, manager, "#create chat-1", 1), alice+": *** room was created")
	same(t, "join", h.send(bob, room1, "#join", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
	same(t, "chat", h.send(alice, room1, "hello", 1), bob+": <alice@example.com>: hello")
	stored, err := h.store.Load(context.Background())
	if err != nil || len(stored) != 1 || !sameRoom(stored[0], h.rt.View().Room("chat-1@example.com")) {
		t.Fatalf("stored %v (%v), memory %v", stored, err, describe(h.rt.View().Room("chat-1@example.com")))
	}
	if n, m := h.rt.Counts(); n != 1 || m != 2 {
		t.Fatalf("counts %d rooms, %d members", n, m)
	}
}

// TestDuplicateEvent: a copy of an event is answered with the first copy's
// outcome, whether it comes while the first is being saved or after; the
// event is applied once.
func TestDuplicateEvent(t *testing.T) {
	h := openSQLite(t, options{dedup: time.Minute})
	h.aliceAndBob()
	in, err := h.engine.Prepare(imc.Request{From: carol, RURI: room1, To: room1, Body: "#join", ContentType: "text/plain", CallID: "dup"})
	if err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int32
	done := func(err error) {
		if err != nil {
			t.Errorf("a copy answered %v", err)
		}
		answered.Add(1)
	}
	for range 3 {
		if err := h.rt.Submit(&Event{In: in, Done: done, Dedup: 42}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every copy answered", func() bool { return answered.Load() == 3 })
	h.out.wait(t, "join", 3)
	h.quiet(3)
	if err := h.rt.Submit(&Event{In: in, Done: done, Dedup: 42}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a late copy answered", func() bool { return answered.Load() == 4 })
	h.quiet(3)
}

// TestInvitationFailedWithdrawn: an invitation delivery refuses is
// withdrawn through the room's shard, and the inviter told.
func TestInvitationFailedWithdrawn(t *testing.T) {
	h := openSQLite(t, options{})
	h.send(alice, manager, "#create chat-1 private", 1)
	h.out.fail[carol] = "403 Forbidden"
	h.out.reset()
	h.raise(alice, room1, "#invite carol", nil)
	got := h.out.wait(t, "invite", 3) // invitation, "sent", "withdrawn"
	want := alice + ": *** the invitation to <" + carol + "> could not be delivered (403 Forbidden) and was withdrawn"
	found := false
	for _, l := range got {
		found = found || l == want
	}
	if !found {
		t.Fatalf("notices %q, want %q among them", got, want)
	}
	eventually(t, "carol no longer invited", func() bool {
		_, ok := h.rt.View().Room("chat-1@example.com").Member(imc.URI{User: "carol", Host: "example.com"})
		return !ok
	})
}

// TestRemoveEverywhere: a member gone for good is removed from every room
// they belong to but those they own, each room told.
func TestRemoveEverywhere(t *testing.T) {
	h := openSQLite(t, options{})
	h.aliceAndBob()
	h.send(bob, manager, "#create chat-2", 1)
	h.send(alice, "sip:chat-2@example.com", "#join", 2)
	h.out.reset()
	h.rt.RemoveEverywhere(imc.URI{User: "bob", Host: "example.com"})
	h.out.wait(t, "removal", 2)
	h.quiet(2)
	bobURI := imc.URI{User: "bob", Host: "example.com"}
	if _, ok := h.rt.View().Room("chat-1@example.com").Member(bobURI); ok {
		t.Fatal("bob is still a member of chat-1")
	}
	if _, ok := h.rt.View().Room("chat-2@example.com").Member(bobURI); !ok {
		t.Fatal("bob was removed from the room he owns")
	}
}

// TestShutdownDrains: what was submitted before Shutdown is applied and
// answered.
func TestShutdownDrains(t *testing.T) {
	h := openSQLite(t, options{})
	h.aliceAndBob()
	var answered atomic.Int32
	for range 50 {
		h.raise(alice, room1, "line", func(err error) {
			if err != nil {
				t.Errorf("answered %v", err)
			}
			answered.Add(1)
		})
	}
	h.raise(carol, room1, "#join", func(error) { answered.Add(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.rt.Shutdown(ctx)
	if n := answered.Load(); n != 51 {
		t.Fatalf("%d of 51 answered", n)
	}
	if _, ok := h.rt.View().Room("chat-1@example.com").Member(imc.URI{User: "carol", Host: "example.com"}); !ok {
		t.Fatal("the join queued before the stop was not applied")
	}
}
