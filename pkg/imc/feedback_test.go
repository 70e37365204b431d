package imc

import (
	"errors"
	"strings"
	"testing"
)

func TestInvitationFailed(t *testing.T) {
	w := newWorld(t, nativeRules())
	res := w.handle("adam", "pub", "#invite zed")
	inv := *res.Notices[0].Invitation
	if want := (Invitation{Room: uri(t, "pub"), Invitee: uri(t, "zed"), Inviter: uri(t, "adam")}); inv != want {
		t.Fatalf("invitation %+v, want %+v", inv, want)
	}
	fail := func(inv Invitation, status string, want ...string) {
		t.Helper()
		res := w.e.InvitationFailed(w.rs, inv, status)
		checkResult(t, res)
		if res.Command != "invitation-failed" {
			t.Errorf("Command %q", res.Command)
		}
		eq(t, "InvitationFailed "+status, render(res), want)
		w.rs.Apply(res.Changes)
	}
	fail(inv, "404 Not Found", "ok", "remove-member sip:pub@h sip:zed@h flag=0",
		"pub@h>adam@h: *** the invitation to <sip:zed@h> could not be delivered (404 Not Found) and was withdrawn")
	if got := members(w.rs, "pub"); got != "alice=1 adam=2 mike=0 ivy=4" {
		t.Errorf("after failure: %s", got)
	}
	// A second report for the same invitation, a stranger, an active
	// member, a missing room: nothing to do.
	fail(inv, "408 Request Timeout", "ok")
	fail(Invitation{Room: uri(t, "pub"), Invitee: uri(t, "mike"), Inviter: uri(t, "alice")}, "480 Temporarily Unavailable", "ok")
	fail(Invitation{Room: uri(t, "gone"), Invitee: uri(t, "ivy"), Inviter: uri(t, "alice")}, "404 Not Found", "ok")
	// The invitee accepted before the failure came back (a forked request).
	w.send("alice", "pub", "#invite zed")
	w.send("zed", "pub", "#accept")
	fail(inv, "408 Request Timeout", "ok")
	// Identity ignores case; odd statuses are cleaned.
	fail(Invitation{Room: uri(t, "PUB"), Invitee: uri(t, "IVY@H"), Inviter: uri(t, "alice")}, "500 \x00bad\r\n", "ok", "remove-member sip:pub@h sip:ivy@h flag=0",
		"pub@h>alice@h: *** the invitation to <sip:ivy@h> could not be delivered (500 ?bad??) and was withdrawn")
	fail(Invitation{Room: uri(t, "priv"), Invitee: uri(t, "ivy")}, "", "ok", "remove-member sip:priv@h sip:ivy@h flag=0")
	w.rs = fixture(t)
	fail(Invitation{Room: uri(t, "priv"), Invitee: uri(t, "ivy"), Inviter: uri(t, "alice")}, "", "ok", "remove-member sip:priv@h sip:ivy@h flag=0",
		"priv@h>alice@h: *** the invitation to <sip:ivy@h> could not be delivered (no status) and was withdrawn")
}

func TestUnavailable(t *testing.T) {
	e := NewEngine(nativeRules())
	f := func(to, body, want string) {
		t.Helper()
		in, err := e.Prepare(Request{From: "sip:zed@h", RURI: addr(to), Body: body, CallID: cid})
		if err != nil {
			t.Fatal(err)
		}
		res := e.Unavailable(in)
		checkResult(t, res)
		if res.Outcome != Refused || len(res.Changes) != 0 {
			t.Errorf("%q: %+v", body, res)
		}
		eq(t, body, append([]string{res.Command}, render(res)[1:]...), []string{want[:indexByte(want, ' ')], want[indexByte(want, ' ')+1:]})
	}
	msg := "re: The room service cannot save changes right now; please try again later"
	f("pub", "#join", "join pub@h>zed@h "+msg)
	f("pub", "#leave", "exit pub@h>zed@h "+msg)
	f("mgr", "#create chat-9", "create chat-9@h>zed@h "+msg)
	f("mgr", "#join", "join chat-manager@h>zed@h "+msg)
	f("pub", "#rooms", "rooms pub@h>zed@h "+msg)
	f("pub", "hello", "chat pub@h>zed@h "+msg)
	f("pub", "#nope", "invalid pub@h>zed@h "+msg)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func TestPrepare(t *testing.T) {
	e := NewEngine(nativeRules())
	f := func(from, ruri, body, key, command string) {
		t.Helper()
		in, err := e.Prepare(Request{From: from, RURI: ruri, Body: body})
		if err != nil {
			t.Fatalf("Prepare(%q, %q, %q): %v", from, ruri, body, err)
		}
		if in.RoomKey() != key || in.Command() != command {
			t.Errorf("Prepare(%q, %q, %q): key %q command %q, want %q %q", from, ruri, body, in.RoomKey(), in.Command(), key, command)
		}
	}
	f("sip:a@h", "sip:Chat-1@H:5060", "hello", "chat-1@h", "chat")
	f("sip:a@h", "sip:chat-manager@h", "hello", "", "chat")
	f("sip:a@h", "sip:chat-1@h", "#join", "chat-1@h", "join")
	f("sip:a@h", "sip:chat-1@h", "#join chat-2", "chat-2@h", "join")
	f("sip:a@h", "sip:chat-1@h", "#join sips:chat-2@other", "chat-2@other", "join")
	f("sip:a@h", "sip:chat-1@h", "#join bad<", "", "join")
	f("sip:a@h", "sip:chat-manager@h", "#join", "", "join")
	f("sip:a@h", "sip:chat-1@h", "#create chat-2", "chat-2@h", "create")
	f("sip:a@h", "sip:chat-1@h", "#create", "", "create")
	f("sip:a@h", "sip:chat-1@h", "#invite bob", "chat-1@h", "invite")
	f("sip:a@h", "sip:chat-1@h", "#invite bob chat-3", "chat-3@h", "invite")
	f("sip:a@h", "sip:chat-1@h", "#modify bob admin chat-3", "chat-3@h", "modify")
	f("sip:a@h", "sip:chat-1@h", "#reject", "chat-1@h", "deny")
	f("sip:a@h", "sip:chat-1@h", "#leave", "chat-1@h", "exit")
	f("sip:a@h", "sip:chat-1@h", "#members", "chat-1@h", "list")
	f("sip:a@h", "sip:chat-1@h", "#help", "", "help")
	f("sip:a@h", "sip:chat-1@h", "#rooms", "", "rooms")
	f("sip:a@h", "sip:chat-1@h", "#what", "", "invalid")
	f("sip:a@h", "sip:chat-1@h", "#", "", "invalid")
	f("sip:a@h", "sip:chat-1@h", "##hi", "chat-1@h", "chat")

	bad := func(from, ruri string) {
		t.Helper()
		_, err := e.Prepare(Request{From: from, RURI: ruri, Body: "#join"})
		if !errors.Is(err, ErrBadRequest) || !errors.Is(err, ErrBadURI) {
			t.Errorf("Prepare(%q, %q): %v, want ErrBadRequest and ErrBadURI", from, ruri, err)
		}
	}
	bad("", "sip:chat-1@h")
	bad("sip:a@h", "")
	bad("sip:a\r\n@h", "sip:chat-1@h")
	bad("sip:a@h", "sip:chat 1@h")
	bad("tel:+123", "sip:chat-1@h")
	bad("sip:a@h", "sip:h")
}

func TestConflict(t *testing.T) {
	e := NewEngine(nativeRules())
	in, err := e.Prepare(Request{From: "sip:zed@h", RURI: addr("mgr"), Body: "#create chat-9", CallID: cid})
	if err != nil {
		t.Fatal(err)
	}
	res := e.Conflict(in)
	checkResult(t, res)
	eq(t, "conflict", render(res), []string{"refused",
		"chat-9@h>zed@h re: The room service could not save this change: it conflicts with data already stored. The operator has been told"})
}

func TestInDoubt(t *testing.T) {
	e := NewEngine(Config{StartChar: '!', ManagerUser: "chat-manager"})
	in := prepare(t, e, "sip:bob@example.com", "sip:chat-1@example.com", "!join")
	res := e.InDoubt(in)
	if len(res.Changes) != 0 || res.Outcome != Refused || res.Command != "join" || len(res.Notices) != 1 {
		t.Fatalf("result %+v", res)
	}
	n := res.Notices[0]
	if n.To.String() != "sip:bob@example.com" || n.From.String() != "sip:chat-1@example.com" || n.InReplyTo == "" ||
		!strings.Contains(n.Body, "could not confirm") || !strings.Contains(n.Body, "!list") {
		t.Fatalf("notice %+v", n)
	}
}

func TestBusy(t *testing.T) {
	e := NewEngine(DefaultConfig())
	f := func(to, body string, applied bool, want string) {
		t.Helper()
		in, err := e.Prepare(Request{From: "sip:zed@h", RURI: addr(to), Body: body, CallID: cid})
		if err != nil {
			t.Fatal(err)
		}
		res := e.Busy(in, applied)
		checkResult(t, res)
		if res.Outcome != Refused || len(res.Changes) != 0 || len(res.Notices) != 1 || res.Notices[0].InReplyTo != cid {
			t.Fatalf("%q: %+v", body, res)
		}
		eq(t, body, render(res)[1:], []string{want})
	}
	f("pub", "hello", false, "pub@h>zed@h re: Room sip:pub@h is busy: your message was not sent; please send it again in a moment")
	f("pub", "#join", true, "pub@h>zed@h re: Room sip:pub@h is busy: your #join was done, but not everybody could be told")
	f("pub", "#list", false, "pub@h>zed@h re: The room service is busy: your #list could not be answered; please send it again in a moment")
	f("mgr", "#rooms", false, "chat-manager@h>zed@h re: The room service is busy: your #rooms could not be answered; please send it again in a moment")
}

func TestMissed(t *testing.T) {
	e := NewEngine(DefaultConfig())
	room, member := URI{User: "pub", Host: "h"}, URI{User: "zed", Host: "h"}
	f := func(n int, want string) {
		t.Helper()
		got := e.Missed(room, member, n)
		if got.From != room || got.To != member || got.ContentType != "text/plain" || got.InReplyTo != "" || got.Body != want {
			t.Fatalf("Missed(%d) = %+v", n, got)
		}
	}
	f(1, "*** you missed 1 message in this room while you could not be reached")
	f(12, "*** you missed 12 messages in this room while you could not be reached")
}
