package imc

import (
	"strings"
	"testing"
)

// joined is the native broadcast when u joins pub or priv: to each active
// member in room order (the joiner's own copy answers its command).
func joinedLines(room, u string, to ...string) []string {
	var out []string
	for _, r := range to {
		line := room + "@h>" + r + "@h"
		if r == u {
			line += " re"
		}
		out = append(out, line+": *** <sip:"+u+"@h> has joined the room")
	}
	return out
}

func TestCreate(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	// A new room, from anywhere, public or private.
	f("zed", "pub", "#create new", "ok",
		"create-room sip:new@h flag=0", "add-member sip:new@h sip:zed@h flag=1",
		"new@h>zed@h re: *** room was created")
	f("zed", "gone", "#create new private", "ok",
		"create-room sip:new@h flag=1", "add-member sip:new@h sip:zed@h flag=1",
		"new@h>zed@h re: *** room was created")
	f("zed", "mgr", "#CREATE New PRIVATE", "ok",
		"create-room sip:New@h flag=1", "add-member sip:New@h sip:zed@h flag=1",
		"New@h>zed@h re: *** room was created")
	f("zed", "pub", "#create sip:new@example.com", "ok",
		"create-room sip:new@example.com flag=0", "add-member sip:new@example.com sip:zed@h flag=1",
		"new@example.com>zed@h re: *** room was created")

	// An existing public room is joined; a pending invitee accepts.
	f("zed", "gone", "#create pub", append([]string{"ok", "add-member sip:pub@h sip:zed@h flag=0"},
		joinedLines("pub", "zed", "alice", "adam", "mike", "zed")...)...)
	f("zed", "gone", "#create pub private", append([]string{"ok", "add-member sip:pub@h sip:zed@h flag=0"},
		joinedLines("pub", "zed", "alice", "adam", "mike", "zed")...)...)
	f("ivy", "pub", "#create pub", append([]string{"ok", "update-member sip:pub@h sip:ivy@h flag=0"},
		joinedLines("pub", "ivy", "alice", "adam", "mike", "ivy")...)...)
	f("ivy", "pub", "#create priv", append([]string{"ok", "update-member sip:priv@h sip:ivy@h flag=0"},
		joinedLines("priv", "ivy", "alice", "adam", "mike", "ivy")...)...)
	for _, who := range []string{"alice", "adam", "mike"} {
		f(who, "gone", "#create pub", "refused", "pub@h>"+who+"@h re: You are already a member of sip:pub@h")
		f(who, "gone", "#create priv", "refused", "priv@h>"+who+"@h re: You are already a member of sip:priv@h")
	}
	// Private rooms need an invitation.
	f("zed", "priv", "#create priv", "refused", "priv@h>zed@h re: Room sip:priv@h is private: you need an invitation to join it")

	// Arguments.
	f("zed", "pub", "#create", "refused", "pub@h>zed@h re: Missing argument: usage #create <room> [private]")
	f("zed", "pub", "#create a private b", "refused", "pub@h>zed@h re: Too many parameters: usage #create <room> [private]")
	f("zed", "pub", "#create new public", "refused", "pub@h>zed@h re: Unknown option 'public': usage #create <room> [private]")
	f("zed", "pub", "#create bad<room", "refused", "pub@h>zed@h re: Bad room 'bad<room': forbidden byte 0x3c in user part")
	f("zed", "pub", "#create tel:123@h", "refused", "pub@h>zed@h re: Bad room 'tel:123@h': scheme must be sip: or sips:")
	f("zed", "pub", "#create chat-manager", "refused", "pub@h>zed@h re: The name chat-manager is reserved for the room manager")
	f("zed", "mgr", "#create Chat-Manager@elsewhere", "refused", "chat-manager@h>zed@h re: The name Chat-Manager is reserved for the room manager")
}

func TestJoin(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	joins := func(room, who string) []string {
		return append([]string{"ok", "add-member sip:" + room + "@h sip:" + who + "@h flag=0"},
			joinedLines(room, who, "alice", "adam", "mike", who)...)
	}
	accepts := func(room string) []string {
		return append([]string{"ok", "update-member sip:" + room + "@h sip:ivy@h flag=0"},
			joinedLines(room, "ivy", "alice", "adam", "mike", "ivy")...)
	}
	// Public room, every role.
	f("zed", "pub", "#join", joins("pub", "zed")...)
	f("ivy", "pub", "#join", accepts("pub")...)
	for _, who := range []string{"alice", "adam", "mike"} {
		f(who, "pub", "#join", "refused", "pub@h>"+who+"@h re: You are already a member of sip:pub@h")
		f(who, "priv", "#join", "refused", "priv@h>"+who+"@h re: You are already a member of sip:priv@h")
	}
	// Private room: only the invitee.
	f("zed", "priv", "#join", "refused", "priv@h>zed@h re: Room sip:priv@h is private: you need an invitation to join it")
	f("ivy", "priv", "#join", accepts("priv")...)
	// Missing room: created (native), or refused.
	f("zed", "gone", "#join", "ok", "create-room sip:gone@h flag=0", "add-member sip:gone@h sip:zed@h flag=1",
		"gone@h>zed@h re: *** room was created")
	w := newWorld(t, Config{StartChar: '#', CreateOnJoin: false})
	eq(t, "no create on join", w.send("zed", "gone", "#join"), []string{"refused", "gone@h>zed@h re: Room sip:gone@h does not exist"})

	// Every argument form names the same room; the stored case is used.
	for _, arg := range []string{"pub", "PUB", "pub@h", "Pub@H", "sip:pub@h", "SIP:pub@h:5060;transport=tcp", "sips:pub@h", "<sip:pub@h>"} {
		f("zed", "priv", "#join "+arg, joins("pub", "zed")...)
		f("zed", "mgr", "#JOIN\t"+arg, joins("pub", "zed")...)
	}
	f("zed", "pub", "#join a b", "refused", "pub@h>zed@h re: Too many parameters: usage #join [<room>]")
	f("zed", "pub", "#join a b c d e f", "refused", "pub@h>zed@h re: Too many parameters: usage #join [<room>]")
	f("zed", "pub", "#join sip:@h", "refused", "pub@h>zed@h re: Bad room 'sip:@h': empty user part")
	f("zed", "pub", "#join x@", "refused", "pub@h>zed@h re: Bad room 'x@': empty host")
	f("zed", "pub", "#join sip:x@h:99999", "refused", "pub@h>zed@h re: Bad room 'sip:x@h:99999': bad port")
	f("zed", "mgr", "#join", "refused", "chat-manager@h>zed@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#join <room>'")
	f("zed", "mgr", "#join chat-manager", "refused", "chat-manager@h>zed@h re: The name chat-manager is reserved for the room manager")
	// The native module made a room literally named "sip:native-1@127.0.0.1"
	// out of this; imcd parses the URI.
	f("alice", "mgr", "#join sip:pub@h", "refused", "pub@h>alice@h re: You are already a member of sip:pub@h")
}

func TestAcceptDeny(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		f("ivy", room, "#accept", append([]string{"ok", "update-member sip:" + room + "@h sip:ivy@h flag=0"},
			joinedLines(room, "ivy", "alice", "adam", "mike", "ivy")...)...)
		for _, deny := range []string{"#deny", "#reject", "#Reject " + room} {
			f("ivy", room, deny, "ok", "remove-member sip:"+room+"@h sip:ivy@h flag=0",
				room+"@h>ivy@h re: You declined the invitation to sip:"+room+"@h",
				room+"@h>alice@h: *** <sip:ivy@h> declined the invitation")
		}
		for _, who := range []string{"alice", "adam", "mike"} {
			f(who, room, "#accept", "refused", room+"@h>"+who+"@h re: You are already a member of sip:"+room+"@h")
			f(who, room, "#deny", "refused", room+"@h>"+who+"@h re: You are already a member of sip:"+room+"@h: send '#exit' to leave it")
		}
		f("zed", room, "#accept", "refused", room+"@h>zed@h re: You have no pending invitation to sip:"+room+"@h")
		f("zed", room, "#reject", "refused", room+"@h>zed@h re: You have no pending invitation to sip:"+room+"@h")
	}
	f("ivy", "gone", "#accept", "refused", "gone@h>ivy@h re: Room sip:gone@h does not exist")
	f("ivy", "gone", "#deny", "refused", "gone@h>ivy@h re: Room sip:gone@h does not exist")
	f("ivy", "mgr", "#accept", "refused", "chat-manager@h>ivy@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#accept <room>'")
	f("ivy", "mgr", "#accept priv", append([]string{"ok", "update-member sip:priv@h sip:ivy@h flag=0"},
		joinedLines("priv", "ivy", "alice", "adam", "mike", "ivy")...)...)
	f("ivy", "pub", "#deny a b", "refused", "pub@h>ivy@h re: Too many parameters: usage #deny [<room>]")

	// Declining a room without an owner tells nobody else.
	w := newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "orphan"), 0, []Member{{uri(t, "mike"), 0}, {uri(t, "ivy"), MemberInvited}}))
	eq(t, "ownerless deny", w.send("ivy", "orphan", "#deny"), []string{"ok", "remove-member sip:orphan@h sip:ivy@h flag=0",
		"orphan@h>ivy@h re: You declined the invitation to sip:orphan@h"})
}

// TestLengthLimits: values that would not fit the 64-character columns are
// refused at the command, never truncated.
func TestLengthLimits(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	fits := strings.Repeat("r", 64-len("sip:@h")) // sip:rrr…@h is exactly 64
	f("zed", "pub", "#create "+fits, "ok", "create-room sip:"+fits+"@h flag=0", "add-member sip:"+fits+"@h sip:zed@h flag=1",
		fits+"@h>zed@h re: *** room was created")
	long := fits + "r"
	f("zed", "pub", "#create "+long, "refused", "pub@h>zed@h re: The room address sip:"+long+"@h is longer than 64 characters")
	f("zed", "pub", "#join "+long, "refused", "pub@h>zed@h re: The room address sip:"+long+"@h is longer than 64 characters")
	f("zed", "pub", "#list "+long, "refused", "pub@h>zed@h re: Room sip:"+long+"@h does not exist")

	user64, user65 := strings.Repeat("u", 64), strings.Repeat("u", 65)
	f(user64, "pub", "#join", append([]string{"ok", "add-member sip:pub@h sip:" + user64 + "@h flag=0"},
		joinedLines("pub", user64, "alice", "adam", "mike", user64)...)...)
	f(user65, "pub", "#join", "refused", "pub@h>"+user65+"@h re: Your address is too long: user and domain are limited to 64 characters each")
	f(user65, "pub", "#create new", "refused", "pub@h>"+user65+"@h re: Your address is too long: user and domain are limited to 64 characters each")
	host65 := strings.Repeat("d", 65)
	f("alice", "pub", "#invite bob@"+host65, "refused", "pub@h>alice@h re: The address sip:bob@"+host65+" is too long: user and domain are limited to 64 characters each")
	f("alice", "pub", "#add "+user65, "refused", "pub@h>alice@h re: The address sip:"+user65+"@h is too long: user and domain are limited to 64 characters each")
	longer := strings.Repeat("x", 200)
	f("zed", "pub", "#create "+longer, "refused", "pub@h>zed@h re: The room address sip:"+strings.Repeat("x", 76)+"... is longer than 64 characters")

	// A room too long for imc_members.room (loaded from a native database,
	// whose imc_rooms columns are wide enough) cannot take new members.
	w := newWorld(t, nativeRules())
	name := strings.Repeat("n", 60)
	w.rs.Put(NewRoom(uri(t, name), 0, []Member{{uri(t, "alice"), MemberOwner}}))
	eq(t, "join long room", w.send("zed", name, "#join"), []string{"refused", name + "@h>zed@h re: The room address sip:" + name + "@h is longer than 64 characters"})
	eq(t, "invite to long room", w.send("alice", name, "#invite zed"), []string{"refused", name + "@h>alice@h re: The room address sip:" + name + "@h is longer than 64 characters"})
	eq(t, "list long room", w.send("alice", name, "#list"), []string{"ok", name + "@h>alice@h re: Members:\n*sip:alice@h"})
}
