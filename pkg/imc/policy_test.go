package imc

import (
	"errors"
	"strings"
	"testing"
)

// TestRoomPolicy: with the defaults, a SIP command creates rooms only
// under "chat-" and only in the domain it was sent to; rooms that exist
// already are served whatever their name.
func TestRoomPolicy(t *testing.T) {
	f := func(cfg Config, from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, cfg)
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	def := DefaultConfig()
	const prefixRule = "not created: room names here start with 'chat-', as in '#create chat-team'"
	// A user's own address, or anything else outside the route.
	f(def, "zed", "mgr", "#create alice", "refused", "chat-manager@h>zed@h re: Room sip:alice@h "+prefixRule)
	f(def, "zed", "mgr", "#create CHAT-1", "refused", "chat-manager@h>zed@h re: Room sip:CHAT-1@h "+prefixRule)
	f(def, "zed", "mgr", "#join support", "refused", "chat-manager@h>zed@h re: Room sip:support@h "+prefixRule)
	f(def, "zed", "alice", "#join", "refused", "alice@h>zed@h re: Room sip:alice@h "+prefixRule)
	// The prefix alone names no room (issue 19: #create chat- made sip:chat-@h).
	const onlyPrefix = "not created: a room name needs more than 'chat-', as in '#create chat-team'"
	f(def, "zed", "mgr", "#create chat-", "refused", "chat-manager@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "mgr", "#create chat- private", "refused", "chat-manager@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "mgr", "#join chat-", "refused", "chat-manager@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "mgr", "#create sip:chat-@h", "refused", "chat-manager@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "chat-", "#join", "refused", "chat-@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "chat-", "#create chat-", "refused", "chat-@h>zed@h re: Room sip:chat-@h "+onlyPrefix)
	f(def, "zed", "mgr", "#create chat-a", "ok",
		"create-room sip:chat-a@h flag=0", "add-member sip:chat-a@h sip:zed@h flag=1", "chat-a@h>zed@h re: *** room was created")
	// A foreign domain.
	f(def, "zed", "mgr", "#create sip:chat-x@foreign.example", "refused",
		"chat-manager@h>zed@h re: Room sip:chat-x@foreign.example not created: rooms can only be created in h")
	f(def, "zed", "mgr", "#join sip:chat-x@foreign.example", "refused",
		"chat-manager@h>zed@h re: Room sip:chat-x@foreign.example not created: rooms can only be created in h")
	f(def, "zed", "mgr", "#create sip:chat-x@H", "ok",
		"create-room sip:chat-x@H flag=0", "add-member sip:chat-x@H sip:zed@h flag=1", "chat-x@H>zed@h re: *** room was created")
	// Inside the policy.
	f(def, "zed", "mgr", "#create chat-x private", "ok",
		"create-room sip:chat-x@h flag=1", "add-member sip:chat-x@h sip:zed@h flag=1", "chat-x@h>zed@h re: *** room was created")
	f(def, "zed", "chat-y", "#join", "ok",
		"create-room sip:chat-y@h flag=0", "add-member sip:chat-y@h sip:zed@h flag=1", "chat-y@h>zed@h re: *** room was created")
	// pub and priv break the policy but exist: they are served.
	f(def, "zed", "pub", "#join", append([]string{"ok", "add-member sip:pub@h sip:zed@h flag=0"},
		joinedLines("pub", "zed", "alice", "adam", "mike", "zed")...)...)
	f(def, "zed", "mgr", "#create pub", append([]string{"ok", "add-member sip:pub@h sip:zed@h flag=0"},
		joinedLines("pub", "zed", "alice", "adam", "mike", "zed")...)...)
	f(def, "alice", "pub", "hello", "ok",
		"pub@h>adam@h: <alice@h>: hello", "pub@h>mike@h: <alice@h>: hello")

	// Configured domains replace the request's; "*" allows any.
	two := DefaultConfig()
	two.Domains = []string{"h", "b.example"}
	f(two, "zed", "mgr", "#create sip:chat-x@B.example", "ok",
		"create-room sip:chat-x@B.example flag=0", "add-member sip:chat-x@B.example sip:zed@h flag=1",
		"chat-x@B.example>zed@h re: *** room was created")
	f(two, "zed", "mgr", "#create sip:chat-x@c.example", "refused",
		"chat-manager@h>zed@h re: Room sip:chat-x@c.example not created: rooms can only be created in h or b.example")
	anyDomain := DefaultConfig()
	anyDomain.Domains = []string{AnyDomain}
	f(anyDomain, "zed", "mgr", "#create sip:chat-x@c.example", "ok",
		"create-room sip:chat-x@c.example flag=0", "add-member sip:chat-x@c.example sip:zed@h flag=1",
		"chat-x@c.example>zed@h re: *** room was created")
	// Another prefix, or none.
	other := DefaultConfig()
	other.RoomPrefix = "room."
	f(other, "zed", "mgr", "#create chat-1", "refused",
		"chat-manager@h>zed@h re: Room sip:chat-1@h not created: room names here start with 'room.', as in '#create room.team'")
	other.RoomPrefix = ""
	f(other, "zed", "mgr", "#create alice", "ok",
		"create-room sip:alice@h flag=0", "add-member sip:alice@h sip:zed@h flag=1", "alice@h>zed@h re: *** room was created")
}

// TestMemberPolicy: #invite and #add bring members from the room's domain
// only, unless member_domains says otherwise; the refusal names the rule.
func TestMemberPolicy(t *testing.T) {
	f := func(cfg Config, body string, want ...string) {
		t.Helper()
		w := newWorld(t, cfg)
		eq(t, body, w.send("alice", "pub", body), want)
	}
	def := DefaultConfig()
	f(def, "#invite sip:x@foreign.example", "refused",
		"pub@h>alice@h re: sip:x@foreign.example cannot be invited: members of sip:pub@h must be in h")
	f(def, "#add sip:x@foreign.example", "refused",
		"pub@h>alice@h re: sip:x@foreign.example cannot be added: members of sip:pub@h must be in h")
	f(def, "#add zed@H", "ok", "add-member sip:pub@h sip:zed@H flag=0",
		"pub@h>alice@h re: *** <sip:zed@H> has joined the room", "pub@h>adam@h: *** <sip:zed@H> has joined the room",
		"pub@h>mike@h: *** <sip:zed@H> has joined the room", "pub@h>zed@H: *** <sip:zed@H> has joined the room",
		"pub@h>zed@H: *** <sip:alice@h> added you to the room")
	// Only managers get as far as the policy: a member is told that first.
	w := newWorld(t, def)
	eq(t, "mike adds", w.send("mike", "pub", "#add sip:x@foreign.example"), []string{"refused",
		"pub@h>mike@h re: Only the owner or an admin of sip:pub@h can use #add"})

	partner := DefaultConfig()
	partner.MemberDomains = []string{"partner.example", "p2.example"}
	f(partner, "#invite sip:x@Partner.Example", "ok", "add-member sip:pub@h sip:x@Partner.Example flag=4",
		"pub@h>x@Partner.Example: INVITE from: alice@h to sip:pub@h (Type: '#accept' or '#deny') [inv pub@h x@Partner.Example by alice@h]",
		"pub@h>alice@h re: *** invitation sent to <sip:x@Partner.Example>")
	f(partner, "#invite sip:x@foreign.example", "refused",
		"pub@h>alice@h re: sip:x@foreign.example cannot be invited: members of sip:pub@h must be in h, partner.example or p2.example")
	open := DefaultConfig()
	open.MemberDomains = []string{AnyDomain}
	if got := newWorld(t, open).send("alice", "pub", "#add sip:x@foreign.example"); got[0] != "ok" {
		t.Errorf("member_domains = *: %v", got)
	}
}

// TestAdminPolicy: the operator's imc:create_room and imc:add_member keep
// to the same rules; with domains empty there is no request domain, so an
// operator may create a room in any domain.
func TestAdminPolicy(t *testing.T) {
	f := func(cfg Config, op AdminOp, want string) {
		t.Helper()
		w := newWorld(t, cfg)
		_, err := w.e.Admin(w.rs, op)
		switch {
		case want == "" && err != nil:
			t.Errorf("%+v: %v", op, err)
		case want != "" && (!errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), want)):
			t.Errorf("%+v: %v, want ErrPolicy saying %q", op, err, want)
		}
	}
	u := func(s string) URI { return uri(t, s) }
	def := DefaultConfig()
	f(def, AdminOp{Kind: AdminCreate, Room: u("alice"), User: u("zed")}, "room names here start with 'chat-'")
	f(def, AdminOp{Kind: AdminCreate, Room: u("chat-"), User: u("zed")}, "a room name needs more than 'chat-'")
	f(def, AdminOp{Kind: AdminCreate, Room: u("sip:chat-x@other.example"), User: u("sip:zed@other.example")}, "")
	f(def, AdminOp{Kind: AdminCreate, Room: u("chat-x"), User: u("sip:zed@foreign.example")},
		"sip:zed@foreign.example cannot be the owner: members of sip:chat-x@h must be in h")
	f(def, AdminOp{Kind: AdminAdd, Room: u("pub"), User: u("sip:zed@foreign.example")},
		"sip:zed@foreign.example cannot be added: members of sip:pub@h must be in h")
	f(def, AdminOp{Kind: AdminAdd, Room: u("pub"), User: u("zed")}, "")
	only := DefaultConfig()
	only.Domains = []string{"h"}
	f(only, AdminOp{Kind: AdminCreate, Room: u("sip:chat-x@other.example"), User: u("sip:zed@other.example")},
		"rooms can only be created in h")
}

// TestOutsidePolicy: what the daemon logs about stored rooms at start.
func TestOutsidePolicy(t *testing.T) {
	f := func(cfg Config, room, want string) {
		t.Helper()
		if got := NewEngine(cfg).OutsidePolicy(uri(t, room)); got != want {
			t.Errorf("%s: %q, want %q", room, got, want)
		}
	}
	def := DefaultConfig()
	f(def, "pub", `name does not start with "chat-"`)
	f(def, "chat-1", "")
	f(def, "chat-", `name is only "chat-"`)
	f(def, "sip:chat-1@anywhere.example", "") // no domains configured: no domain rule without a request
	only := DefaultConfig()
	only.Domains = []string{"h"}
	f(only, "sip:chat-1@anywhere.example", "domain anywhere.example is not in domains")
	f(nativeRules(), "pub", "")
}
