package imc

import (
	"strings"
	"testing"
)

// TestNativeTranscript replays the user side of
// opensips-wire/imc-native/transcript.txt (both sessions, 30 steps) and
// compares what each member receives. Bodies the native module sent are
// copied from the capture; where imcd differs on purpose the step says why.
// Lines read "room>user: body", hosts left out (all are 127.0.0.1).
func TestNativeTranscript(t *testing.T) {
	cfg := nativeRules()
	cfg.ManagerUser = "native-manager"
	e := NewEngine(cfg)
	rs := NewRooms()
	at := func(s string) string { return "sip:" + s + "@127.0.0.1" }
	step := func(from, to, body string, want ...string) Result {
		t.Helper()
		in, err := e.Prepare(Request{From: at(from), RURI: at(to), Body: body, ContentType: "text/plain", CallID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		res := e.Handle(rs, in)
		checkResult(t, res)
		rs.Apply(res.Changes)
		var got []string
		for _, n := range res.Notices {
			got = append(got, n.From.User+">"+n.To.User+": "+n.Body)
		}
		eq(t, from+" to "+to+" "+body, got, want)
		return res
	}
	joined := func(room, who string, to ...string) []string {
		var out []string
		for _, u := range to {
			out = append(out, room+">"+u+": *** <sip:"+who+"@127.0.0.1> has joined the room")
		}
		return out
	}
	help := nativeHelpText + imcdHelpText // native text, then imcd's additions

	step("alice", "native-manager", "#create native-1", "native-1>alice: *** room was created")
	step("bob", "native-1", "#join", joined("native-1", "bob", "alice", "bob")...)
	step("carol", "native-manager", "#join native-1", joined("native-1", "carol", "alice", "bob", "carol")...)
	step("alice", "native-1", "hello room, this is alice",
		"native-1>bob: <alice@127.0.0.1>: hello room, this is alice",
		"native-1>carol: <alice@127.0.0.1>: hello room, this is alice")
	step("bob", "native-1", "#list", "native-1>bob: Members:\n*sip:alice@127.0.0.1\nsip:carol@127.0.0.1\nsip:bob@127.0.0.1")
	step("carol", "native-1", "#help", "native-1>carol: "+help)
	// Native: "invalid command 'foo' - send ''#help' for details".
	step("carol", "native-1", "#foo bar", "native-1>carol: invalid command '#foo' - send '#help' for details")
	// Native: "INVITE from: dave@127.0.0.1(Type: '#accept' or '#deny')" (the
	// invitee's own address), and no word to the inviter.
	res := step("alice", "native-1", "#invite dave",
		"native-1>dave: INVITE from: alice@127.0.0.1 to sip:native-1@127.0.0.1 (Type: '#accept' or '#deny')",
		"native-1>alice: *** invitation sent to <sip:dave@127.0.0.1>")
	if res.Notices[0].Invitation == nil {
		t.Error("the invitation notice carries no Invitation")
	}
	step("dave", "native-1", "#accept", joined("native-1", "dave", "alice", "bob", "carol", "dave")...)
	step("bob", "native-manager", "#create native-2", "native-2>bob: *** room was created")
	step("carol", "native-2", "#join", joined("native-2", "carol", "bob", "carol")...)
	// Native: the others were told "*** <sip:carol@127.0.0.1> has joined the room".
	step("alice", "native-1", "#remove carol",
		"native-1>carol: You have been removed from this room",
		"native-1>alice: *** <sip:carol@127.0.0.1> has been removed",
		"native-1>bob: *** <sip:carol@127.0.0.1> has been removed",
		"native-1>dave: *** <sip:carol@127.0.0.1> has been removed")
	// imcd also confirms to the leaver.
	step("bob", "native-1", "#exit",
		"native-1>bob: You have left the room",
		"native-1>alice: The user [bob] has left the room",
		"native-1>dave: The user [bob] has left the room")
	step("alice", "native-1", "hello again, after carol was removed and bob left",
		"native-1>dave: <alice@127.0.0.1>: hello again, after carol was removed and bob left")
	// Native: 404 and silence.
	step("zed", "native-1", "I am not a member", "native-1>zed: You are not a member of sip:native-1@127.0.0.1")
	res = step("alice", "native-1", "#invite sip:carol@127.0.0.1",
		"native-1>carol: INVITE from: alice@127.0.0.1 to sip:native-1@127.0.0.1 (Type: '#accept' or '#deny')",
		"native-1>alice: *** invitation sent to <sip:carol@127.0.0.1>")
	// Native: silence.
	step("carol", "native-1", "#deny",
		"native-1>carol: You declined the invitation to sip:native-1@127.0.0.1",
		"native-1>alice: *** <sip:carol@127.0.0.1> declined the invitation")
	// Native: zed is unregistered, the invitation is lost and zed stays a
	// pending member for ever. imcd withdraws it when delivery fails.
	res = step("alice", "native-1", "#invite zed",
		"native-1>zed: INVITE from: alice@127.0.0.1 to sip:native-1@127.0.0.1 (Type: '#accept' or '#deny')",
		"native-1>alice: *** invitation sent to <sip:zed@127.0.0.1>")
	failed := e.InvitationFailed(rs, *res.Notices[0].Invitation, "404 Not Found")
	rs.Apply(failed.Changes)
	eq(t, "invitation to zed failed", render(failed), []string{"ok", "remove-member sip:native-1@127.0.0.1 sip:zed@127.0.0.1 flag=0",
		"native-1@127.0.0.1>alice@127.0.0.1: *** the invitation to <sip:zed@127.0.0.1> could not be delivered (404 Not Found) and was withdrawn"})
	// Native: 404 and silence.
	step("carol", "native-2", "#destroy", "native-2>carol: Only the owner of sip:native-2@127.0.0.1 can use #destroy")
	step("bob", "native-2", "#destroy", "native-2>bob: The room has been destroyed", "native-2>carol: The room has been destroyed")
	step("alice", "native-manager", "#create native-3 private", "native-3>alice: *** room was created")
	// Native: 200 and silence, twice.
	step("bob", "native-3", "#join", "native-3>bob: Room sip:native-3@127.0.0.1 is private: you need an invitation to join it")
	step("bob", "native-3", "#create native-3", "native-3>bob: Room sip:native-3@127.0.0.1 is private: you need an invitation to join it")
	// (OpenSIPS was restarted here; the native module reversed the order of
	// non-owner members on reload, which leaves this listing unchanged.)
	step("dave", "native-1", "#list", "native-1>dave: Members:\n*sip:alice@127.0.0.1\nsip:dave@127.0.0.1")
	// Native: refused because "<dave@127.0.0.1>: " and 1010 bytes make 1028,
	// over its 1023-byte line. imcd's limit is on the text alone (max_body),
	// so this line goes through and 1024 bytes of text are refused.
	x := strings.Repeat("x", 1010)
	step("dave", "native-1", x, "native-1>alice: <dave@127.0.0.1>: "+x)
	step("dave", "native-1", x+strings.Repeat("x", 14), "native-1>dave: Message not sent: it is longer than 1023 bytes")
	// Native: the join was broadcast again to alice and dave.
	step("alice", "native-1", "#JOIN", "native-1>alice: You are already a member of sip:native-1@127.0.0.1")
	// Native: created a room named "sip:native-1@127.0.0.1".
	step("alice", "native-manager", "#join sip:native-1@127.0.0.1", "native-1>alice: You are already a member of sip:native-1@127.0.0.1")
	step("alice", "native-manager", "#help", "native-manager>alice: "+help)
	// Native: 404 and silence.
	step("alice", "native-manager", "#", "native-manager>alice: invalid command '#' - send '#help' for details")
	step("alice", "native-1", "#exit", "native-1>alice: The room has been destroyed", "native-1>dave: The room has been destroyed")

	// What is left matches db-after-transcript-shutdown.sql without its
	// bogus room: native-3, private, alice its owner.
	if rs.Len() != 1 || members(rs, "sip:native-3@127.0.0.1") != "alice=1" || !rs.Room("native-3@127.0.0.1").Private() {
		t.Errorf("final state: %d rooms, native-3 %s", rs.Len(), members(rs, "sip:native-3@127.0.0.1"))
	}
}
