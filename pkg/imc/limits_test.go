package imc

import "testing"

// TestMaxMembers: a full room takes no new member by any way in, while
// members already in (a pending invitee accepting) are not affected.
func TestMaxMembers(t *testing.T) {
	cfg := nativeRules()
	cfg.MaxMembers = 4 // pub and priv hold alice, adam, mike and ivy (pending)
	w := newWorld(t, cfg)
	full := func(room string) string {
		return room + "@h>zed@h re: Room sip:" + room + "@h is full: it has the maximum of 4 members"
	}
	eq(t, "join", w.send("zed", "pub", "#join"), []string{"refused", full("pub")})
	eq(t, "create existing", w.send("zed", "pub", "#create pub"), []string{"refused", full("pub")})
	eq(t, "invite", w.send("alice", "pub", "#invite zed"), []string{"refused",
		"pub@h>alice@h re: Room sip:pub@h is full: it has the maximum of 4 members"})
	eq(t, "add", w.send("adam", "priv", "#add zed"), []string{"refused",
		"priv@h>adam@h re: Room sip:priv@h is full: it has the maximum of 4 members"})
	// ivy is in already: accepting does not grow the room.
	got := w.send("ivy", "pub", "#accept")
	if got[0] != "ok" {
		t.Fatalf("pending invitee could not accept in a full room: %v", got)
	}
	// Once someone leaves there is room again.
	w.send("mike", "pub", "#exit")
	if got := w.send("zed", "pub", "#join"); got[0] != "ok" {
		t.Fatalf("join after a member left: %v", got)
	}
}

// TestMaxOwnedRooms: #create and a creating #join beyond the cap are
// refused; joining existing rooms is not capped.
func TestMaxOwnedRooms(t *testing.T) {
	cfg := nativeRules()
	cfg.MaxOwnedRooms = 2
	w := newWorld(t, cfg) // alice owns pub and priv
	// The room does not exist, so the refusal comes from where it was sent.
	const owns2 = "re: You own 2 rooms already, the most allowed: destroy one first"
	eq(t, "create", w.send("alice", "pub", "#create new"), []string{"refused", "pub@h>alice@h " + owns2})
	eq(t, "join creates", w.send("alice", "mgr", "#join new"), []string{"refused", "chat-manager@h>alice@h " + owns2})
	if got := w.send("zed", "mgr", "#create z1"); got[0] != "ok" {
		t.Fatalf("zed's first room: %v", got)
	}
	if got := w.send("zed", "mgr", "#create z2"); got[0] != "ok" {
		t.Fatalf("zed's second room: %v", got)
	}
	eq(t, "zed's third", w.send("zed", "mgr", "#create z3"), []string{"refused", "chat-manager@h>zed@h " + owns2})
	if got := w.send("zed", "pub", "#join"); got[0] != "ok" {
		t.Fatalf("joining is not capped: %v", got)
	}
	w.send("alice", "priv", "#destroy")
	if got := w.send("alice", "mgr", "#create new"); got[0] != "ok" {
		t.Fatalf("create after destroying one: %v", got)
	}
}
