package imc

import (
	"errors"
	"strings"
	"testing"
	"time"
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

// TestInvitationWaitingThenDelivered: an invitation kept for an invitee
// who cannot be reached now: the inviter is told it waits (and for how
// long), then that it reached them; nothing changes in the room.
func TestInvitationWaitingThenDelivered(t *testing.T) {
	w := newWorld(t, nativeRules())
	res := w.handle("adam", "pub", "#invite zed")
	inv := *res.Notices[0].Invitation
	w.rs.Apply(res.Changes)
	f := func(res Result, command string, want ...string) {
		t.Helper()
		checkResult(t, res)
		if res.Command != command || len(res.Changes) != 0 {
			t.Errorf("Command %q, %d changes", res.Command, len(res.Changes))
		}
		eq(t, command, render(res), want)
	}
	f(w.e.InvitationWaiting(w.rs, inv, "480 Temporarily Unavailable", 10*time.Minute), "invitation-waiting", "ok",
		"pub@h>adam@h: *** <sip:zed@h> cannot be reached now (480 Temporarily Unavailable): the invitation waits for them for up to 10 minutes, and you will be told whether it reached them")
	f(w.e.InvitationWaiting(w.rs, inv, "", 90*time.Minute), "invitation-waiting", "ok",
		"pub@h>adam@h: *** <sip:zed@h> cannot be reached now: the invitation waits for them for up to 1 hour 30 minutes, and you will be told whether it reached them")
	f(w.e.InvitationDelivered(w.rs, inv, 3*time.Minute+12*time.Second), "invitation-delivered", "ok",
		"pub@h>adam@h: *** the invitation reached <sip:zed@h> after waiting 3 minutes 12 seconds for them")
	// zed accepted meanwhile (told out of band): it still reached them.
	w.send("zed", "pub", "#accept")
	f(w.e.InvitationDelivered(w.rs, inv, time.Second), "invitation-delivered", "ok",
		"pub@h>adam@h: *** the invitation reached <sip:zed@h> after waiting 1 second for them")
	// No longer pending: nothing to wait for; the invitee gone, nothing
	// reached; no inviter (an operator's): nobody to tell.
	f(w.e.InvitationWaiting(w.rs, inv, "404 Not Found", time.Minute), "invitation-waiting", "ok")
	f(w.e.InvitationDelivered(w.rs, Invitation{Room: uri(t, "pub"), Invitee: uri(t, "nobody"), Inviter: uri(t, "adam")}, time.Minute), "invitation-delivered", "ok")
	f(w.e.InvitationDelivered(w.rs, Invitation{Room: uri(t, "gone"), Invitee: uri(t, "ivy"), Inviter: uri(t, "adam")}, time.Minute), "invitation-delivered", "ok")
	f(w.e.InvitationWaiting(w.rs, Invitation{Room: uri(t, "pub"), Invitee: uri(t, "ivy")}, "", time.Minute), "invitation-waiting", "ok")
}

// TestInvitationExpired: an invitation that waited too long is withdrawn
// and the inviter told how long the invitee could not be reached.
func TestInvitationExpired(t *testing.T) {
	w := newWorld(t, nativeRules())
	inv := Invitation{Room: uri(t, "pub"), Invitee: uri(t, "ivy"), Inviter: uri(t, "alice")}
	res := w.e.InvitationExpired(w.rs, inv, 10*time.Minute+3*time.Second)
	checkResult(t, res)
	eq(t, "expired", render(res), []string{"ok", "remove-member sip:pub@h sip:ivy@h flag=0",
		"pub@h>alice@h: *** <sip:ivy@h> could not be reached for 10 minutes 3 seconds: the invitation was withdrawn"})
	w.rs.Apply(res.Changes)
	if got := members(w.rs, "pub"); got != "alice=1 adam=2 mike=0" {
		t.Errorf("after expiry: %s", got)
	}
	if res := w.e.InvitationExpired(w.rs, inv, time.Minute); len(res.Changes)+len(res.Notices) != 0 {
		t.Errorf("a second expiry: %+v", res)
	}
}

func TestTxtSpan(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := txtSpan(d); got != want {
			t.Errorf("txtSpan(%v) = %q, want %q", d, got, want)
		}
	}
	f(0, "less than a second")
	f(499*time.Millisecond, "less than a second")
	f(999*time.Millisecond, "1 second")
	f(10*time.Minute-2*time.Millisecond, "10 minutes")
	f(45*time.Second, "45 seconds")
	f(10*time.Minute, "10 minutes")
	f(time.Hour+30*time.Minute+59*time.Second, "1 hour 30 minutes")
	f(time.Hour+5*time.Second, "1 hour")
	f(49*time.Hour, "2 days 1 hour")
}
