package imc

import (
	"fmt"
	"strings"
	"testing"
)

// Moderation: who may ban, unban, list bans, moderate and give voice, who
// is refused, and what each party is told. The fixture's rooms are pub and
// priv: alice owner, adam admin, mike member, ivy pending invitee.

func TestBan(t *testing.T) {
	f := fresh(t, nativeRules())
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		sr := "sip:" + room + "@h"
		// The owner bans admins and members, an admin members; the member
		// is removed in the same change set, told why, and so is the room.
		f("alice", room, "#ban mike spamming links", "ok",
			"remove-member "+sr+" sip:mike@h flag=0",
			`ban `+sr+` sip:mike@h by=sip:alice@h reason="spamming links"`,
			r+"mike@h: You have been banned from this room (reason: spamming links)",
			r+"alice@h re: *** <sip:mike@h> has been banned (reason: spamming links)",
			r+"adam@h: *** <sip:mike@h> has been banned (reason: spamming links)")
		f("alice", room, "#ban adam", "ok",
			"remove-member "+sr+" sip:adam@h flag=0",
			`ban `+sr+` sip:adam@h by=sip:alice@h reason=""`,
			r+"adam@h: You have been banned from this room",
			r+"alice@h re: *** <sip:adam@h> has been banned",
			r+"mike@h: *** <sip:adam@h> has been banned")
		f("adam", room, "#ban MIKE", "ok",
			"remove-member "+sr+" sip:mike@h flag=0",
			`ban `+sr+` sip:mike@h by=sip:adam@h reason=""`,
			r+"mike@h: You have been banned from this room",
			r+"alice@h: *** <sip:mike@h> has been banned",
			r+"adam@h re: *** <sip:mike@h> has been banned")
		// A pending invitee loses the invitation and is told; a stranger
		// is banned before they come, and not told.
		f("adam", room, "#ban ivy", "ok",
			"remove-member "+sr+" sip:ivy@h flag=0",
			`ban `+sr+` sip:ivy@h by=sip:adam@h reason=""`,
			r+"ivy@h: You have been banned from this room",
			r+"alice@h: *** <sip:ivy@h> has been banned",
			r+"adam@h re: *** <sip:ivy@h> has been banned",
			r+"mike@h: *** <sip:ivy@h> has been banned")
		f("alice", room, "#ban zed@elsewhere troll", "ok",
			`ban `+sr+` sip:zed@elsewhere by=sip:alice@h reason="troll"`,
			r+"alice@h re: *** <sip:zed@elsewhere> has been banned (reason: troll)",
			r+"adam@h: *** <sip:zed@elsewhere> has been banned (reason: troll)",
			r+"mike@h: *** <sip:zed@elsewhere> has been banned (reason: troll)")
		// Never the owner, never oneself, an admin not another admin, and
		// only the owner and admins.
		f("adam", room, "#ban alice", "refused", r+"adam@h re: The owner of a room cannot be banned")
		f("alice", room, "#ban alice", "refused", r+"alice@h re: You cannot ban yourself: send '#exit' to leave the room")
		f("mike", room, "#ban zed", "refused", r+"mike@h re: Only the owner or an admin of "+sr+" can use #ban")
		f("ivy", room, "#ban mike", "refused", r+"ivy@h re: You are invited to "+sr+" but have not joined yet: send '#accept' first")
		f("zed", room, "#ban mike", "refused", r+"zed@h re: You are not a member of "+sr)
	}
	w := newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "two"), 0, []Member{{uri(t, "alice"), MemberOwner}, {uri(t, "adam"), MemberAdmin}, {uri(t, "ada"), MemberAdmin}}))
	eq(t, "admin bans admin", w.send("adam", "two", "#ban ada"), []string{"refused", "two@h>adam@h re: Only the owner of sip:two@h can ban an admin"})

	f("alice", "gone", "#ban mike", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "pub", "#ban", "refused", "pub@h>alice@h re: Missing argument: usage #ban <user> [<room>] [<reason>]")
	f("alice", "mgr", "#ban mike", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#ban <user> <room> [<reason>]'")
	f("alice", "pub", "#ban zed "+strings.Repeat("x", MaxReasonLen+1), "refused", "pub@h>alice@h re: Reason too long: it is limited to 255 bytes")
	f("alice", "pub", "#ban "+strings.Repeat("z", 65), "refused",
		"pub@h>alice@h re: The address sip:"+strings.Repeat("z", 65)+"@h is too long: user and domain are limited to 64 characters each")
	f("alice", "pub", "#ban zed\x01", "refused", "pub@h>alice@h re: Bad user 'zed?': forbidden byte 0x01 in user part")

	// A second ban is refused, whatever the letter case.
	w = newWorld(t, nativeRules())
	w.send("alice", "pub", "#ban zed")
	eq(t, "second ban", w.send("adam", "pub", "#ban ZED again"), []string{"refused", "pub@h>adam@h re: sip:zed@h is already banned from sip:pub@h"})
}

// TestReasonArgs: after the user, a word that names a room (a SIP URI, an
// address with a domain, a name with the room prefix; any word when sent
// to the manager) is the room, and the reason follows it; any other word
// starts the reason, which is kept as typed, however many words it has.
func TestReasonArgs(t *testing.T) {
	cfg := nativeRules()
	cfg.RoomPrefix = "p"
	f := func(from, to, body, want string) {
		t.Helper()
		w := newWorld(t, cfg)
		res := w.handle(from, to, body)
		got := ""
		if n := len(res.Changes); n > 0 {
			got = res.Changes[n-1].String()
		}
		if got != want {
			t.Errorf("%q: %v, want %s", body, render(res), want)
		}
	}
	ban := func(room, reason string) string {
		return fmt.Sprintf("ban sip:%s@h sip:zed@h by=sip:alice@h reason=%q", room, reason)
	}
	f("alice", "priv", "#ban zed", ban("priv", ""))
	f("alice", "priv", "#ban zed troll", ban("priv", "troll"))
	f("alice", "priv", "#ban zed   a  troll\tfrom  afar, with six words or more  ", ban("priv", "a  troll\tfrom  afar, with six words or more"))
	f("alice", "priv", "#ban zed pub", ban("pub", ""))
	f("alice", "priv", "#ban zed pub troll", ban("pub", "troll"))
	f("alice", "priv", "#ban zed pub@h troll", ban("pub", "troll"))
	f("alice", "priv", "#ban zed sip:pub@h troll\r\nsecond line", ban("pub", "troll"))
	f("alice", "priv", "#ban zed <sip:pub@h> troll", ban("pub", "troll"))
	f("alice", "mgr", "#ban zed pub troll", ban("pub", "troll"))
	f("alice", "mgr", "#ban zed xyz troll", "") // no room xyz: refused

	// Without a room prefix, a bare name is the reason's first word.
	cfg.RoomPrefix = ""
	f("alice", "priv", "#ban zed pub troll", ban("priv", "pub troll"))
	f("alice", "priv", "#ban zed pub@h troll", ban("pub", "troll"))
	f("alice", "priv", "#remove mike pub", `remove-member sip:priv@h sip:mike@h flag=0`)

	// The remove's reason reaches the member and the room, and a
	// withdrawn invitation's the invitee and the sender.
	w := newWorld(t, nativeRules())
	eq(t, "remove with reason", w.send("adam", "pub", "#remove mike off topic, again"), []string{"ok",
		"remove-member sip:pub@h sip:mike@h flag=0",
		"pub@h>mike@h: You have been removed from this room (reason: off topic, again)",
		"pub@h>alice@h: *** <sip:mike@h> has been removed (reason: off topic, again)",
		"pub@h>adam@h re: *** <sip:mike@h> has been removed (reason: off topic, again)"})
	eq(t, "withdraw with reason", w.send("adam", "pub", "#remove ivy wrong person"), []string{"ok",
		"remove-member sip:pub@h sip:ivy@h flag=0",
		"pub@h>ivy@h: Your invitation to sip:pub@h has been withdrawn (reason: wrong person)",
		"pub@h>adam@h re: *** the invitation to <sip:ivy@h> was withdrawn (reason: wrong person)"})
	eq(t, "remove, reason too long", w.send("alice", "pub", "#remove adam "+strings.Repeat("é", 128)),
		[]string{"refused", "pub@h>alice@h re: Reason too long: it is limited to 255 bytes"})
	eq(t, "remove from the manager", w.send("alice", "mgr", "#remove adam pub enough"), []string{"ok",
		"remove-member sip:pub@h sip:adam@h flag=0",
		"pub@h>adam@h: You have been removed from this room (reason: enough)",
		"pub@h>alice@h re: *** <sip:adam@h> has been removed (reason: enough)"})
}

// TestBannedUser: a banned user is kept out until #unban: their #join,
// #create of the room, #accept and chat are refused saying so, and so are
// an invitation and an addition of them.
func TestBannedUser(t *testing.T) {
	w := newWorld(t, nativeRules())
	f := w.expect
	w.send("alice", "pub", "#ban mike flooding")
	w.send("alice", "pub", "#ban zed")
	w.send("alice", "priv", "#ban ivy")
	for _, body := range []string{"#join", "#create pub", "#accept", "hello?", "##hello"} {
		f("mike", "pub", body, "refused", "pub@h>mike@h re: You are banned from sip:pub@h (reason: flooding)")
		f("zed", "pub", body, "refused", "pub@h>zed@h re: You are banned from sip:pub@h")
	}
	f("mike", "mgr", "#join pub", "refused", "pub@h>mike@h re: You are banned from sip:pub@h (reason: flooding)")
	f("ivy", "priv", "#accept", "refused", "priv@h>ivy@h re: You are banned from sip:priv@h")
	f("ivy", "priv", "#join", "refused", "priv@h>ivy@h re: You are banned from sip:priv@h")
	for _, cmd := range []string{"#invite", "#add"} {
		f("alice", "pub", cmd+" MIKE", "refused", "pub@h>alice@h re: sip:mike@h is banned from sip:pub@h: send '#unban mike@h' first")
		f("adam", "pub", cmd+" zed", "refused", "pub@h>adam@h re: sip:zed@h is banned from sip:pub@h: send '#unban zed@h' first")
	}
	// A member row beside a ban (written by another program) does not let
	// the user speak.
	w.rs.Put(w.rs.Room("priv@h").WithModeration(Moderation{Bans: []Ban{{User: uri(t, "adam")}}}))
	f("adam", "priv", "hi", "refused", "priv@h>adam@h re: You are banned from sip:priv@h")
	// Other rooms are not concerned.
	f("mike", "priv", "hi", "ok", "priv@h>alice@h: <mike@h>: hi", "priv@h>adam@h: <mike@h>: hi")

	// Unbanned, mike joins again; the room is told of the unban.
	f("adam", "pub", "#unban Mike", "ok", "unban sip:pub@h sip:mike@h",
		"pub@h>alice@h: *** <sip:mike@h> is no longer banned", "pub@h>adam@h re: *** <sip:mike@h> is no longer banned")
	f("mike", "pub", "#join", "ok", "add-member sip:pub@h sip:mike@h flag=0",
		"pub@h>alice@h: *** <sip:mike@h> has joined the room", "pub@h>adam@h: *** <sip:mike@h> has joined the room",
		"pub@h>mike@h re: *** <sip:mike@h> has joined the room")
}

func TestUnban(t *testing.T) {
	w := newWorld(t, nativeRules())
	f := w.expect
	w.send("alice", "pub", "#ban zed")
	f("mike", "pub", "#unban zed", "refused", "pub@h>mike@h re: Only the owner or an admin of sip:pub@h can use #unban")
	f("ivy", "pub", "#unban zed", "refused", "pub@h>ivy@h re: You are invited to sip:pub@h but have not joined yet: send '#accept' first")
	f("zed", "pub", "#unban zed", "refused", "pub@h>zed@h re: You are not a member of sip:pub@h")
	f("alice", "pub", "#unban bob", "refused", "pub@h>alice@h re: sip:bob@h is not banned from sip:pub@h")
	f("alice", "priv", "#unban zed", "refused", "priv@h>alice@h re: sip:zed@h is not banned from sip:priv@h")
	f("alice", "pub", "#unban", "refused", "pub@h>alice@h re: Missing argument: usage #unban <user> [<room>]")
	f("alice", "pub", "#unban zed pub x", "refused", "pub@h>alice@h re: Too many parameters: usage #unban <user> [<room>]")
	f("alice", "mgr", "#unban zed pub", "ok", "unban sip:pub@h sip:zed@h",
		"pub@h>alice@h re: *** <sip:zed@h> is no longer banned", "pub@h>adam@h: *** <sip:zed@h> is no longer banned",
		"pub@h>mike@h: *** <sip:zed@h> is no longer banned")
	f("alice", "pub", "#unban zed", "refused", "pub@h>alice@h re: sip:zed@h is not banned from sip:pub@h")
}

func TestBans(t *testing.T) {
	cfg := nativeRules()
	cfg.MaxBody = 120
	w := newWorld(t, cfg)
	f := w.expect
	f("alice", "pub", "#bans", "ok", "pub@h>alice@h re: Nobody is banned from sip:pub@h")
	w.send("alice", "pub", "#ban zed too loud")
	w.send("adam", "pub", "#ban mike")
	res, err := w.e.Admin(w.rs, AdminOp{Kind: AdminBan, Room: uri(t, "pub"), User: uri(t, "bob"), Text: "spam"})
	if err != nil {
		t.Fatal(err)
	}
	w.rs.Apply(res.Changes)
	for _, who := range []string{"alice", "adam"} {
		// In order of address, as few MESSAGEs as max_body allows.
		f(who, "pub", "#bans", "ok",
			"pub@h>"+who+"@h re: Banned from sip:pub@h (3 users):\nsip:bob@h (by the operator): spam\nsip:mike@h (by sip:adam@h)",
			"pub@h>"+who+"@h re: sip:zed@h (by sip:alice@h): too loud")
	}
	f("mike", "pub", "#bans", "refused", "pub@h>mike@h re: You are not a member of sip:pub@h")
	f("alice", "priv", "#bans", "ok", "priv@h>alice@h re: Nobody is banned from sip:priv@h")
	f("mike", "priv", "#bans", "refused", "priv@h>mike@h re: Only the owner or an admin of sip:priv@h can use #bans")
	f("ivy", "priv", "#bans", "refused", "priv@h>ivy@h re: You are invited to sip:priv@h but have not joined yet: send '#accept' first")
	f("zed", "priv", "#bans", "refused", "priv@h>zed@h re: You are not a member of sip:priv@h")
	f("alice", "mgr", "#bans", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#bans <room>'")
	f("alice", "mgr", "#bans priv", "ok", "priv@h>alice@h re: Nobody is banned from sip:priv@h")

	// At most maxBansListed lines, then how many more.
	var bans []Ban
	for i := range maxBansListed + 3 {
		bans = append(bans, Ban{User: uri(t, fmt.Sprintf("u%03d", i))})
	}
	w.rs.Put(w.rs.Room("priv@h").WithModeration(Moderation{Bans: bans}))
	body := strings.Join(w.send("alice", "priv", "#bans")[1:], "\n")
	if !strings.Contains(body, "(103 users)") || !strings.Contains(body, "sip:u099@h (by the operator)") ||
		strings.Contains(body, "u100") || !strings.HasSuffix(body, "sip:u099@h (by the operator)\n... and 3 more") {
		t.Errorf("#bans of 103:\n%s", body)
	}
}

func TestModerate(t *testing.T) {
	w := newWorld(t, nativeRules())
	f := w.expect
	f("mike", "pub", "#moderate on", "refused", "pub@h>mike@h re: Only the owner or an admin of sip:pub@h can use #moderate")
	f("ivy", "pub", "#moderate on", "refused", "pub@h>ivy@h re: You are invited to sip:pub@h but have not joined yet: send '#accept' first")
	f("zed", "pub", "#moderate on", "refused", "pub@h>zed@h re: You are not a member of sip:pub@h")
	f("alice", "pub", "#moderate", "refused", "pub@h>alice@h re: Missing argument: usage #moderate on|off [<room>]")
	f("alice", "pub", "#moderate maybe", "refused", "pub@h>alice@h re: Unknown option 'maybe': usage #moderate on|off [<room>]")
	f("alice", "pub", "#moderate off", "refused", "pub@h>alice@h re: sip:pub@h is not moderated")
	f("adam", "pub", "#moderate ON", "ok", "moderate sip:pub@h",
		"pub@h>alice@h: *** <sip:adam@h> made the room moderated: only the owner, admins and members with voice may speak",
		"pub@h>adam@h re: *** <sip:adam@h> made the room moderated: only the owner, admins and members with voice may speak",
		"pub@h>mike@h: *** <sip:adam@h> made the room moderated: only the owner, admins and members with voice may speak")
	f("alice", "pub", "#moderate on", "refused", "pub@h>alice@h re: sip:pub@h is already moderated")

	// Only the owner, admins and members with voice speak; the others are
	// told once per line, and everything else works as before.
	f("mike", "pub", "hello?", "refused", "pub@h>mike@h re: Room sip:pub@h is moderated: only the owner, admins and members with voice may speak; your message was not sent")
	f("mike", "pub", "hello again", "refused", "pub@h>mike@h re: Room sip:pub@h is moderated: only the owner, admins and members with voice may speak; your message was not sent")
	f("alice", "pub", "welcome", "ok", "pub@h>adam@h: <alice@h>: welcome", "pub@h>mike@h: <alice@h>: welcome")
	f("adam", "pub", "rules", "ok", "pub@h>alice@h: <adam@h>: rules", "pub@h>mike@h: <adam@h>: rules")
	f("ivy", "pub", "hi", "refused", "pub@h>ivy@h re: You are invited to sip:pub@h but have not joined yet: send '#accept' first")
	f("zed", "pub", "hi", "refused", "pub@h>zed@h re: You are not a member of sip:pub@h")
	f("mike", "pub", "#list", "ok", "pub@h>mike@h re: Members:\n*sip:alice@h\nsip:mike@h\n~sip:adam@h")
	f("zed", "pub", "#join", "ok", "add-member sip:pub@h sip:zed@h flag=0",
		"pub@h>alice@h: *** <sip:zed@h> has joined the room", "pub@h>adam@h: *** <sip:zed@h> has joined the room",
		"pub@h>mike@h: *** <sip:zed@h> has joined the room", "pub@h>zed@h re: *** <sip:zed@h> has joined the room")
	f("zed", "pub", "#rooms", "ok", "pub@h>zed@h re: Rooms:\nsip:pub@h (4 members, moderated, member)")
	f("mike", "pub", "#exit", "ok", "remove-member sip:pub@h sip:mike@h flag=0",
		"pub@h>mike@h re: You have left the room", "pub@h>alice@h: The user [mike] has left the room",
		"pub@h>adam@h: The user [mike] has left the room", "pub@h>zed@h: The user [mike] has left the room")

	f("alice", "mgr", "#moderate off pub", "ok", "unmoderate sip:pub@h",
		"pub@h>alice@h re: *** <sip:alice@h> ended the moderation: every member may speak",
		"pub@h>adam@h: *** <sip:alice@h> ended the moderation: every member may speak",
		"pub@h>zed@h: *** <sip:alice@h> ended the moderation: every member may speak")
	f("zed", "pub", "free at last", "ok", "pub@h>alice@h: <zed@h>: free at last", "pub@h>adam@h: <zed@h>: free at last")
}

func TestVoice(t *testing.T) {
	w := newWorld(t, nativeRules())
	f := w.expect
	w.send("alice", "pub", "#moderate on")
	f("adam", "pub", "#voice mike", "ok", "voice sip:pub@h sip:mike@h",
		"pub@h>alice@h: *** <sip:mike@h> has been given voice", "pub@h>adam@h re: *** <sip:mike@h> has been given voice",
		"pub@h>mike@h: *** <sip:mike@h> has been given voice")
	f("mike", "pub", "may I?", "ok", "pub@h>alice@h: <mike@h>: may I?", "pub@h>adam@h: <mike@h>: may I?")
	f("mike", "pub", "#list", "ok", "pub@h>mike@h re: Members:\n*sip:alice@h\n+sip:mike@h\n~sip:adam@h")
	f("alice", "pub", "#voice MIKE", "refused", "pub@h>alice@h re: sip:mike@h has voice already")
	f("alice", "pub", "#voice adam", "refused", "pub@h>alice@h re: sip:adam@h is an admin and may always speak")
	f("adam", "pub", "#voice alice", "refused", "pub@h>adam@h re: sip:alice@h is the owner and may always speak")
	f("alice", "pub", "#voice ivy", "refused", "pub@h>alice@h re: sip:ivy@h has not accepted the invitation to sip:pub@h yet")
	f("alice", "pub", "#voice zed", "refused", "pub@h>alice@h re: sip:zed@h is not a member of sip:pub@h")
	f("mike", "pub", "#voice mike", "refused", "pub@h>mike@h re: Only the owner or an admin of sip:pub@h can use #voice")
	f("mike", "pub", "#devoice mike", "refused", "pub@h>mike@h re: Only the owner or an admin of sip:pub@h can use #devoice")
	f("alice", "pub", "#voice", "refused", "pub@h>alice@h re: Missing argument: usage #voice <user> [<room>]")
	f("alice", "pub", "#devoice", "refused", "pub@h>alice@h re: Missing argument: usage #devoice <user> [<room>]")

	f("alice", "pub", "#devoice mike", "ok", "devoice sip:pub@h sip:mike@h",
		"pub@h>alice@h re: *** <sip:mike@h> no longer has voice", "pub@h>adam@h: *** <sip:mike@h> no longer has voice",
		"pub@h>mike@h: *** <sip:mike@h> no longer has voice")
	f("alice", "pub", "#devoice mike", "refused", "pub@h>alice@h re: sip:mike@h has no voice")
	f("mike", "pub", "now?", "refused", "pub@h>mike@h re: Room sip:pub@h is moderated: only the owner, admins and members with voice may speak; your message was not sent")

	// Voice belongs to the member: it ends when they leave.
	w.send("alice", "pub", "#voice mike")
	w.send("mike", "pub", "#exit")
	w.send("mike", "pub", "#join")
	f("mike", "pub", "back", "refused", "pub@h>mike@h re: Room sip:pub@h is moderated: only the owner, admins and members with voice may speak; your message was not sent")
	// Voice can be given before the room is moderated, and is kept across.
	w.send("alice", "priv", "#voice mike")
	w.send("alice", "priv", "#moderate on")
	f("mike", "priv", "still here", "ok", "priv@h>alice@h: <mike@h>: still here", "priv@h>adam@h: <mike@h>: still here")
}

// TestModerationApply: rooms stay immutable (a *Room held keeps its
// moderation), removing a member ends their voice, and destroying a room
// ends its bans and moderation.
func TestModerationApply(t *testing.T) {
	rs := fixture(t)
	pub, mike, zed := uri(t, "pub"), uri(t, "mike"), uri(t, "zed")
	before := rs.Room("pub@h")
	rs.Apply([]Change{{Op: OpModerate, Room: pub}, {Op: OpVoice, Room: pub, Member: mike},
		{Op: OpBan, Room: pub, Member: zed, Reason: "r", By: uri(t, "alice")}})
	if before.Moderated() || before.Voiced(mike) || !before.Moderation().IsZero() {
		t.Errorf("a held room changed: %+v", before.Moderation())
	}
	r := rs.Room("pub@h")
	if b, ok := r.Banned(uri(t, "ZED")); !r.Moderated() || !r.Voiced(mike) || !ok || b.Reason != "r" || b.By != uri(t, "alice") {
		t.Errorf("after apply: %+v", r.Moderation())
	}
	held := r
	rs.Apply([]Change{{Op: OpRemoveMember, Room: pub, Member: mike}, {Op: OpUnban, Room: pub, Member: uri(t, "Zed")}})
	if r = rs.Room("pub@h"); r.Voiced(mike) || len(r.Moderation().Bans) != 0 || !r.Moderated() {
		t.Errorf("after remove and unban: %+v", r.Moderation())
	}
	if !held.Voiced(mike) || len(held.Moderation().Bans) != 1 {
		t.Errorf("a held room changed: %+v", held.Moderation())
	}
	rs.Apply([]Change{{Op: OpDeleteRoom, Room: pub}, {Op: OpCreateRoom, Room: pub}})
	if r = rs.Room("pub@h"); !r.Moderation().IsZero() {
		t.Errorf("a room created again kept %+v", r.Moderation())
	}
	rs.Apply([]Change{{Op: OpModerate, Room: pub}, {Op: OpUnmoderate, Room: pub}})
	if r = rs.Room("pub@h"); r.mod != nil {
		t.Errorf("an empty moderation is kept: %+v", r.mod)
	}

	// SameModeration: what a commit in doubt is judged by.
	base := NewRoom(pub, 0, []Member{{uri(t, "alice"), MemberOwner}, {mike, 0}})
	same := func(a, b Moderation) bool { return base.WithModeration(a).SameModeration(base.WithModeration(b)) }
	zb := Ban{User: zed, Reason: "r", By: uri(t, "alice")}
	for i, c := range []struct {
		a, b Moderation
		want bool
	}{
		{Moderation{}, Moderation{}, true},
		{Moderation{Moderated: true}, Moderation{}, false},
		{Moderation{Voiced: []URI{mike}}, Moderation{Voiced: []URI{uri(t, "MIKE")}}, true},
		{Moderation{Voiced: []URI{mike}}, Moderation{Moderated: true, Voiced: []URI{mike}}, false},
		{Moderation{Bans: []Ban{zb}}, Moderation{Bans: []Ban{{User: uri(t, "ZED"), Reason: "r", By: uri(t, "ALICE")}}}, true},
		{Moderation{Bans: []Ban{zb}}, Moderation{Bans: []Ban{{User: zed, Reason: "other", By: zb.By}}}, false},
		{Moderation{Bans: []Ban{zb}}, Moderation{Bans: []Ban{{User: zed, Reason: "r"}}}, false},
		{Moderation{Bans: []Ban{zb}}, Moderation{Bans: []Ban{{User: uri(t, "bob"), Reason: "r", By: zb.By}}}, false},
	} {
		if got := same(c.a, c.b); got != c.want {
			t.Errorf("%d: SameModeration(%+v, %+v) = %v", i, c.a, c.b, got)
		}
	}

	// WithModeration (the store's loading) keeps voices of members only.
	r = NewRoom(pub, 0, []Member{{uri(t, "alice"), MemberOwner}, {mike, 0}}).WithModeration(Moderation{
		Moderated: true, Voiced: []URI{uri(t, "MIKE"), zed}, Bans: []Ban{{User: zed, Reason: "x"}, {User: uri(t, "bob")}}})
	got := r.Moderation()
	if !got.Moderated || len(got.Voiced) != 1 || got.Voiced[0] != mike || len(got.Bans) != 2 || got.Bans[0].User.User != "bob" {
		t.Errorf("WithModeration: %+v", got)
	}
}

func TestAdminModeration(t *testing.T) {
	w := newWorld(t, nativeRules())
	u := func(s string) URI { return uri(t, s) }
	f, fails := w.adminOK, w.adminFails
	// The operator bans admins too, never the owner.
	f(AdminOp{Kind: AdminBan, Room: u("pub"), User: u("adam"), Text: "rogue admin"}, "ok",
		"remove-member sip:pub@h sip:adam@h flag=0", `ban sip:pub@h sip:adam@h by=operator reason="rogue admin"`,
		"pub@h>adam@h: You have been banned from this room (reason: rogue admin)",
		"pub@h>alice@h: *** <sip:adam@h> has been banned (reason: rogue admin)",
		"pub@h>mike@h: *** <sip:adam@h> has been banned (reason: rogue admin)")
	fails(AdminOp{Kind: AdminBan, Room: u("pub"), User: u("ADAM")}, ErrBanned, "sip:adam@h is already banned")
	fails(AdminOp{Kind: AdminBan, Room: u("pub"), User: u("alice")}, ErrOwner, "owns room")
	fails(AdminOp{Kind: AdminBan, Room: u("gone"), User: u("zed")}, ErrNoSuchRoom, "sip:gone@h")
	fails(AdminOp{Kind: AdminBan, Room: u("pub"), User: u("zed"), Text: strings.Repeat("x", 256)}, ErrTooLong, "256 bytes")
	fails(AdminOp{Kind: AdminBan, Room: u("pub")}, ErrBadArgument, "empty user part")
	fails(AdminOp{Kind: AdminAdd, Room: u("pub"), User: u("adam")}, ErrBanned, "unban them first")
	fails(AdminOp{Kind: AdminRemove, Room: u("pub"), User: u("mike"), Text: strings.Repeat("x", 256)}, ErrTooLong, "256 bytes")
	f(AdminOp{Kind: AdminRemove, Room: u("pub"), User: u("mike"), Text: "quiet"}, "ok",
		"remove-member sip:pub@h sip:mike@h flag=0",
		"pub@h>mike@h: You have been removed from this room (reason: quiet)",
		"pub@h>alice@h: *** <sip:mike@h> has been removed (reason: quiet)")

	f(AdminOp{Kind: AdminUnban, Room: u("pub"), User: u("Adam")}, "ok", "unban sip:pub@h sip:adam@h",
		"pub@h>alice@h: *** <sip:adam@h> is no longer banned")
	fails(AdminOp{Kind: AdminUnban, Room: u("pub"), User: u("adam")}, ErrNotBanned, "sip:adam@h")

	f(AdminOp{Kind: AdminModerate, Room: u("priv"), Moderated: true}, "ok", "moderate sip:priv@h",
		"priv@h>alice@h: *** the room is now moderated: only the owner, admins and members with voice may speak",
		"priv@h>adam@h: *** the room is now moderated: only the owner, admins and members with voice may speak",
		"priv@h>mike@h: *** the room is now moderated: only the owner, admins and members with voice may speak")
	f(AdminOp{Kind: AdminModerate, Room: u("priv"), Moderated: true}, "ok")
	f(AdminOp{Kind: AdminModerate, Room: u("priv")}, "ok", "unmoderate sip:priv@h",
		"priv@h>alice@h: *** the room is no longer moderated: every member may speak",
		"priv@h>adam@h: *** the room is no longer moderated: every member may speak",
		"priv@h>mike@h: *** the room is no longer moderated: every member may speak")
	fails(AdminOp{Kind: AdminModerate, Room: u("gone")}, ErrNoSuchRoom, "sip:gone@h")
}

// TestHelpModeration: the commands of the owner and admins close #help,
// after the history's when the rooms keep it.
func TestHelpModeration(t *testing.T) {
	cfg := nativeRules()
	cfg.History = true
	w := newWorld(t, cfg)
	res := w.handle("zed", "pub", "#help")
	body := res.Notices[0].Body
	if !strings.HasSuffix(body, historyHelp+moderationHelpText) {
		t.Errorf("#help with history ends:\n%s", body[len(body)-600:])
	}
}
