package imc

import (
	"strings"
	"testing"
)

func TestExit(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		for _, exit := range []string{"#exit", "#leave", "#LEAVE " + room} {
			f("mike", room, exit, "ok", "remove-member sip:"+room+"@h sip:mike@h flag=0",
				r+"mike@h re: You have left the room",
				r+"alice@h: The user [mike] has left the room",
				r+"adam@h: The user [mike] has left the room")
			// The owner's exit destroys the room; everybody is told,
			// the pending invitee too.
			f("alice", room, exit, "ok", "delete-room sip:"+room+"@h",
				r+"alice@h re: The room has been destroyed",
				r+"adam@h: The room has been destroyed",
				r+"mike@h: The room has been destroyed",
				r+"ivy@h: The room has been destroyed")
		}
		f("adam", room, "#exit", "ok", "remove-member sip:"+room+"@h sip:adam@h flag=0",
			r+"adam@h re: You have left the room",
			r+"alice@h: The user [adam] has left the room",
			r+"mike@h: The user [adam] has left the room")
		f("ivy", room, "#exit", "refused", r+"ivy@h re: You have not joined sip:"+room+"@h: send '#deny' to decline the invitation")
		f("zed", room, "#leave", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("mike", "gone", "#exit", "refused", "gone@h>mike@h re: Room sip:gone@h does not exist")
	f("mike", "mgr", "#exit", "refused", "chat-manager@h>mike@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#exit <room>'")
	f("mike", "mgr", "#exit pub", "ok", "remove-member sip:pub@h sip:mike@h flag=0",
		"pub@h>mike@h re: You have left the room",
		"pub@h>alice@h: The user [mike] has left the room",
		"pub@h>adam@h: The user [mike] has left the room")
	f("mike", "pub", "#leave a b", "refused", "pub@h>mike@h re: Too many parameters: usage #leave [<room>]")
}

func TestDestroy(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		f("alice", room, "#destroy", "ok", "delete-room sip:"+room+"@h",
			r+"alice@h re: The room has been destroyed",
			r+"adam@h: The room has been destroyed",
			r+"mike@h: The room has been destroyed",
			r+"ivy@h: The room has been destroyed")
		f("adam", room, "#destroy", "refused", r+"adam@h re: Only the owner of sip:"+room+"@h can use #destroy")
		f("mike", room, "#destroy", "refused", r+"mike@h re: Only the owner of sip:"+room+"@h can use #destroy")
		f("ivy", room, "#destroy", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#destroy", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#destroy", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "priv", "#destroy pub", "ok", "delete-room sip:pub@h",
		"pub@h>alice@h re: The room has been destroyed",
		"pub@h>adam@h: The room has been destroyed",
		"pub@h>mike@h: The room has been destroyed",
		"pub@h>ivy@h: The room has been destroyed")

	// A room without an owner (native database) cannot be destroyed over
	// SIP, but joins and lists work.
	w := newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "orphan"), 0, []Member{{uri(t, "mike"), 0}, {uri(t, "adam"), MemberAdmin}}))
	eq(t, "orphan destroy", w.send("mike", "orphan", "#destroy"), []string{"refused", "orphan@h>mike@h re: Only the owner of sip:orphan@h can use #destroy"})
	eq(t, "orphan join", w.send("zed", "orphan", "#join"), []string{"ok", "add-member sip:orphan@h sip:zed@h flag=0",
		"orphan@h>mike@h: *** <sip:zed@h> has joined the room", "orphan@h>adam@h: *** <sip:zed@h> has joined the room",
		"orphan@h>zed@h re: *** <sip:zed@h> has joined the room"})
	eq(t, "orphan list", w.send("zed", "orphan", "#list"), []string{"ok", "orphan@h>zed@h re: Members:\nsip:zed@h\n~sip:adam@h\nsip:mike@h"})
	eq(t, "orphan modify", w.send("adam", "orphan", "#modify zed admin"), []string{"refused", "orphan@h>adam@h re: Only the owner of sip:orphan@h can use #modify"})
	eq(t, "orphan exit", w.send("adam", "orphan", "#exit"), []string{"ok", "remove-member sip:orphan@h sip:adam@h flag=0",
		"orphan@h>adam@h re: You have left the room",
		"orphan@h>mike@h: The user [adam] has left the room", "orphan@h>zed@h: The user [adam] has left the room"})
}

func TestList(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		for _, who := range []string{"alice", "adam", "mike"} {
			for _, list := range []string{"#list", "#members", "#MEMBERS " + strings.ToUpper(room)} {
				// Owner first, then newest first (native order); no pending invitee.
				f(who, room, list, "ok", r+who+"@h re: Members:\n*sip:alice@h\nsip:mike@h\n~sip:adam@h")
			}
		}
		f("ivy", room, "#list", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#members", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#list", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "mgr", "#list pub", "ok", "pub@h>alice@h re: Members:\n*sip:alice@h\nsip:mike@h\n~sip:adam@h")
	f("alice", "mgr", "#list", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#list <room>'")
	f("alice", "pub", "#list a b", "refused", "pub@h>alice@h re: Too many parameters: usage #list [<room>]")
}

// nativeHelpText is the native #help reply as captured (505 bytes).
const nativeHelpText = "\r\n#create <room_name> - create new connference room\r\n#join [<room_name>] - join the conference room\r\n#invite <user_name> [<room_name>] - invite a user to join a conference room\r\n#accept - accept invitation to join a conference room\r\n#deny - deny invitation to join a conference room\r\n#remove <user_name> [<room_name>] - remove an user from the conference room\r\n#list - list members is a conference room\r\n#exit [<room_name>] - exit from a conference room\r\n#destroy [<room_name>] - destroy conference room\r\n"

const imcdHelpText = "#create <room_name> private - create a room that others join only by invitation\r\n" +
	"#rooms - list the public rooms and the rooms you are in\r\n" +
	"#add <user_name> [<room_name>] - add a user to the conference room\r\n" +
	"#modify <user_name> owner|admin|member [<room_name>] - change the role of a member\r\n" +
	"#reject, #leave, #members - the same as #deny, #exit, #list\r\n" +
	"##<text> - send a message that starts with #\r\n" + moderationHelpText

// moderationHelpText closes imcdHelpText: the commands of the owner and
// admins that keep order, with who may use them.
const moderationHelpText = "For the owner and admins:\r\n" +
	"#remove <user_name> [<room_name>] [<reason>] - remove a user, saying why\r\n" +
	"#ban <user_name> [<room_name>] [<reason>] - remove a user and keep them out\r\n" +
	"#unban <user_name> [<room_name>] - let a banned user in again\r\n" +
	"#bans [<room_name>] - list the banned users\r\n" +
	"#moderate on|off [<room_name>] - let only the owner, admins and members with voice speak\r\n" +
	"#voice|#devoice <user_name> [<room_name>] - give a member voice, or take it away\r\n"

func TestHelp(t *testing.T) {
	if len(nativeHelpText) != 505 {
		t.Fatalf("native help is %d bytes, the capture says 505", len(nativeHelpText))
	}
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	help := nativeHelpText + imcdHelpText
	// Anyone, anywhere, from the URI it was sent to; parameters are ignored.
	for _, who := range []string{"alice", "adam", "mike", "ivy", "zed"} {
		for _, to := range []string{"pub", "priv", "gone", "mgr"} {
			f(who, to, "#help", "ok", addr(to)[4:]+">"+who+"@h re: "+help)
		}
	}
	f("zed", "pub", "#HELP me please", "ok", "pub@h>zed@h re: "+help)

	w := newWorld(t, Config{StartChar: '*'})
	eq(t, "help with *", w.send("zed", "pub", "*help"), []string{"ok", "pub@h>zed@h re: " + strings.ReplaceAll(help, "#", "*")})
}

func TestRooms(t *testing.T) {
	w := newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "other@elsewhere"), 0, []Member{{uri(t, "bob"), MemberOwner}}))
	w.rs.Put(NewRoom(uri(t, "Zoo"), 0, []Member{{uri(t, "bob"), MemberOwner}, {uri(t, "mike"), MemberInvited}}))
	w.rs.Put(NewRoom(uri(t, "secret"), RoomPrivate, []Member{{uri(t, "bob"), MemberOwner}}))
	w.rs.Put(NewRoom(uri(t, "away@far"), RoomPrivate, []Member{{uri(t, "bob"), MemberOwner}, {uri(t, "mike"), MemberAdmin}}))
	f := func(from, to, body string, want ...string) {
		t.Helper()
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	// Public rooms of the request URI's domain, plus the sender's rooms
	// anywhere; never another user's private room.
	f("zed", "pub", "#rooms", "ok", "pub@h>zed@h re: Rooms:\nsip:pub@h (3 members)\nsip:Zoo@h (1 member)")
	f("zed", "sip:x@elsewhere", "#rooms", "ok", "x@elsewhere>zed@h re: Rooms:\nsip:other@elsewhere (1 member)")
	f("zed", "sip:x@nowhere", "#rooms", "ok", "x@nowhere>zed@h re: No rooms")
	f("mike", "mgr", "#ROOMS", "ok", "chat-manager@h>mike@h re: Rooms:\nsip:away@far (2 members, private, admin)\nsip:priv@h (3 members, private, member)\nsip:pub@h (3 members, member)\nsip:Zoo@h (1 member, invited)")
	f("alice", "gone", "#rooms", "ok", "gone@h>alice@h re: Rooms:\nsip:priv@h (3 members, private, owner)\nsip:pub@h (3 members, owner)\nsip:Zoo@h (1 member)")
	f("ivy", "pub", "#rooms", "ok", "pub@h>ivy@h re: Rooms:\nsip:priv@h (private, invited)\nsip:pub@h (3 members, invited)\nsip:Zoo@h (1 member)")
	f("bob", "pub", "#rooms", "ok", "pub@h>bob@h re: Rooms:\nsip:away@far (2 members, private, owner)\nsip:other@elsewhere (1 member, owner)\nsip:pub@h (3 members)\nsip:secret@h (1 member, private, owner)\nsip:Zoo@h (1 member, owner)")
	f("zed", "pub", "#rooms all", "refused", "pub@h>zed@h re: Too many parameters: usage #rooms")

	// Capped, in a stable order.
	w.e = NewEngine(Config{StartChar: '#', MaxRoomsListed: 2})
	f("bob", "pub", "#rooms", "ok", "pub@h>bob@h re: Rooms:\nsip:away@far (2 members, private, owner)\nsip:other@elsewhere (1 member, owner)\n... and 3 more")
}

func TestInvalidCommand(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	// Native: "invalid command 'foo' - send ''#help' for details".
	f("mike", "pub", "#foo bar", "refused", "pub@h>mike@h re: invalid command '#foo' - send '#help' for details")
	f("zed", "gone", "#Foo", "refused", "gone@h>zed@h re: invalid command '#Foo' - send '#help' for details")
	f("zed", "mgr", "#", "refused", "chat-manager@h>zed@h re: invalid command '#' - send '#help' for details")
	f("zed", "pub", "# join", "refused", "pub@h>zed@h re: invalid command '#' - send '#help' for details")
	f("zed", "pub", "#\r\njoin", "refused", "pub@h>zed@h re: invalid command '#' - send '#help' for details")
	f("zed", "pub", "#a\x01b\x7fc", "refused", "pub@h>zed@h re: invalid command '#a?b?c' - send '#help' for details")
	f("zed", "pub", "#"+strings.Repeat("x", 40), "refused", "pub@h>zed@h re: invalid command '#"+strings.Repeat("x", 32)+"...' - send '#help' for details")
	f("zed", "pub", "#"+strings.Repeat("x", 31)+"é", "refused", "pub@h>zed@h re: invalid command '#"+strings.Repeat("x", 31)+"...' - send '#help' for details")
	f("zed", "pub", "#a b c d e f g", "refused", "pub@h>zed@h re: invalid command '#a' - send '#help' for details")
}

func TestStartChar(t *testing.T) {
	w := newWorld(t, Config{StartChar: '*', MaxBody: 100, ManagerUser: "chat-manager"})
	f := func(from, to, body string, want ...string) {
		t.Helper()
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	f("mike", "pub", "#join", "ok", "pub@h>alice@h: <mike@h>: #join", "pub@h>adam@h: <mike@h>: #join")
	f("mike", "pub", "**stars", "ok", "pub@h>alice@h: <mike@h>: *stars", "pub@h>adam@h: <mike@h>: *stars")
	f("mike", "pub", "##x", "ok", "pub@h>alice@h: <mike@h>: ##x", "pub@h>adam@h: <mike@h>: ##x")
	f("mike", "pub", "*bogus", "refused", "pub@h>mike@h re: invalid command '*bogus' - send '*help' for details")
	f("ivy", "pub", "hi", "refused", "pub@h>ivy@h re: You are invited to sip:pub@h but have not joined yet: send '*accept' first")
	f("alice", "pub", "*invite zed", "ok", "add-member sip:pub@h sip:zed@h flag=4",
		"pub@h>zed@h: INVITE from: alice@h to sip:pub@h (Type: '*accept' or '*deny') [inv pub@h zed@h by alice@h]",
		"pub@h>alice@h re: *** invitation sent to <sip:zed@h>")
	f("alice", "pub", "*remove alice", "refused", "pub@h>alice@h re: You cannot remove yourself: send '*exit' to leave the room")
	f("zed", "mgr", "*join", "refused", "chat-manager@h>zed@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '*join <room>'")
}
