package imc

import "testing"

func TestInvite(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		for _, who := range []string{"alice", "adam"} {
			f(who, room, "#invite zed", "ok", "add-member sip:"+room+"@h sip:zed@h flag=4",
				room+"@h>zed@h: INVITE from: "+who+"@h to sip:"+room+"@h (Type: '#accept' or '#deny') [inv "+room+"@h zed@h by "+who+"@h]",
				room+"@h>"+who+"@h re: *** invitation sent to <sip:zed@h>")
		}
		f("mike", room, "#invite zed", "refused", room+"@h>mike@h re: Only the owner or an admin of sip:"+room+"@h can use #invite")
		f("ivy", room, "#invite zed", "refused", room+"@h>ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#invite bob", "refused", room+"@h>zed@h re: You are not a member of sip:"+room+"@h")
		f("alice", room, "#invite mike", "refused", room+"@h>alice@h re: sip:mike@h is already a member of sip:"+room+"@h")
		f("alice", room, "#invite MIKE@H", "refused", room+"@h>alice@h re: sip:mike@h is already a member of sip:"+room+"@h")
		f("alice", room, "#invite ivy", "refused", room+"@h>alice@h re: sip:ivy@h has already been invited to sip:"+room+"@h")
		f("alice", room, "#invite alice", "refused", room+"@h>alice@h re: sip:alice@h is already a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#invite zed", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	// The user argument in every form; stored and shown as given.
	for arg, want := range map[string]string{
		"Zed":                           "sip:Zed@h",
		"zed@example.com":               "sip:zed@example.com",
		"sip:zed@example.com:5070;lr":   "sip:zed@example.com",
		"sips:Zed@Example.COM":          "sip:Zed@Example.COM",
		"<sip:zed@example.com>":         "sip:zed@example.com",
		"SIP:zed@example.com?subject=x": "sip:zed@example.com",
	} {
		aor := want[len("sip:"):]
		f("alice", "pub", "#invite "+arg, "ok", "add-member sip:pub@h "+want+" flag=4",
			"pub@h>"+aor+": INVITE from: alice@h to sip:pub@h (Type: '#accept' or '#deny') [inv pub@h "+aor+" by alice@h]",
			"pub@h>alice@h re: *** invitation sent to <"+want+">")
	}
	// The room argument names another room, from a room or the manager.
	f("alice", "priv", "#invite zed pub", "ok", "add-member sip:pub@h sip:zed@h flag=4",
		"pub@h>zed@h: INVITE from: alice@h to sip:pub@h (Type: '#accept' or '#deny') [inv pub@h zed@h by alice@h]",
		"pub@h>alice@h re: *** invitation sent to <sip:zed@h>")
	f("alice", "mgr", "#invite zed sip:pub@h", "ok", "add-member sip:pub@h sip:zed@h flag=4",
		"pub@h>zed@h: INVITE from: alice@h to sip:pub@h (Type: '#accept' or '#deny') [inv pub@h zed@h by alice@h]",
		"pub@h>alice@h re: *** invitation sent to <sip:zed@h>")
	f("alice", "mgr", "#invite zed", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#invite <user> <room>'")
	f("alice", "pub", "#invite", "refused", "pub@h>alice@h re: Missing argument: usage #invite <user> [<room>]")
	f("alice", "pub", "#invite a b c", "refused", "pub@h>alice@h re: Too many parameters: usage #invite <user> [<room>]")
	f("alice", "pub", "#invite zed\x01", "refused", "pub@h>alice@h re: Bad user 'zed?': forbidden byte 0x01 in user part")
	f("alice", "pub", "#invite zed bad\"room", "refused", "pub@h>alice@h re: Bad room 'bad\"room': forbidden byte 0x22 in user part")
	f("alice", "pub", "#invite http://zed@h", "refused", "pub@h>alice@h re: Bad user 'http://zed@h': scheme must be sip: or sips:")
}

func TestRemove(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		// The owner removes admins and members, an admin members.
		f("alice", room, "#remove mike", "ok", "remove-member sip:"+room+"@h sip:mike@h flag=0",
			r+"mike@h: You have been removed from this room",
			r+"alice@h re: *** <sip:mike@h> has been removed",
			r+"adam@h: *** <sip:mike@h> has been removed")
		f("alice", room, "#remove adam", "ok", "remove-member sip:"+room+"@h sip:adam@h flag=0",
			r+"adam@h: You have been removed from this room",
			r+"alice@h re: *** <sip:adam@h> has been removed",
			r+"mike@h: *** <sip:adam@h> has been removed")
		f("adam", room, "#remove sip:MIKE@h", "ok", "remove-member sip:"+room+"@h sip:mike@h flag=0",
			r+"mike@h: You have been removed from this room",
			r+"alice@h: *** <sip:mike@h> has been removed",
			r+"adam@h re: *** <sip:mike@h> has been removed")
		// Removing a pending invitee withdraws the invitation.
		f("adam", room, "#remove ivy", "ok", "remove-member sip:"+room+"@h sip:ivy@h flag=0",
			r+"ivy@h: Your invitation to sip:"+room+"@h has been withdrawn",
			r+"adam@h re: *** the invitation to <sip:ivy@h> was withdrawn")
		// Never the owner, never oneself, an admin not another admin.
		f("adam", room, "#remove alice", "refused", r+"adam@h re: The owner of a room cannot be removed")
		f("alice", room, "#remove alice", "refused", r+"alice@h re: You cannot remove yourself: send '#exit' to leave the room")
		f("adam", room, "#remove adam", "refused", r+"adam@h re: You cannot remove yourself: send '#exit' to leave the room")
		f("alice", room, "#remove zed", "refused", r+"alice@h re: sip:zed@h is not a member of sip:"+room+"@h")
		f("mike", room, "#remove ivy", "refused", r+"mike@h re: Only the owner or an admin of sip:"+room+"@h can use #remove")
		f("ivy", room, "#remove mike", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#remove mike", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#remove mike", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "pub", "#remove", "refused", "pub@h>alice@h re: Missing argument: usage #remove <user> [<room>] [<reason>]")
	f("alice", "mgr", "#remove mike", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#remove <user> <room> [<reason>]'")

	w := newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "two"), 0, []Member{{uri(t, "alice"), MemberOwner}, {uri(t, "adam"), MemberAdmin}, {uri(t, "ada"), MemberAdmin}}))
	eq(t, "admin removes admin", w.send("adam", "two", "#remove ada"), []string{"refused", "two@h>adam@h re: Only the owner of sip:two@h can remove an admin"})
}

func TestAdd(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		for _, who := range []string{"alice", "adam"} {
			re := func(to string) string {
				if to == who {
					return " re"
				}
				return ""
			}
			f(who, room, "#add zed", "ok", "add-member sip:"+room+"@h sip:zed@h flag=0",
				r+"alice@h"+re("alice")+": *** <sip:zed@h> has joined the room",
				r+"adam@h"+re("adam")+": *** <sip:zed@h> has joined the room",
				r+"mike@h: *** <sip:zed@h> has joined the room",
				r+"zed@h: *** <sip:zed@h> has joined the room",
				r+"zed@h: *** <sip:"+who+"@h> added you to the room")
		}
		// A pending invitee is made active where it stands.
		f("alice", room, "#add IVY", "ok", "update-member sip:"+room+"@h sip:ivy@h flag=0",
			r+"alice@h re: *** <sip:ivy@h> has joined the room",
			r+"adam@h: *** <sip:ivy@h> has joined the room",
			r+"mike@h: *** <sip:ivy@h> has joined the room",
			r+"ivy@h: *** <sip:ivy@h> has joined the room",
			r+"ivy@h: *** <sip:alice@h> added you to the room")
		f("alice", room, "#add mike", "refused", r+"alice@h re: sip:mike@h is already a member of sip:"+room+"@h")
		f("mike", room, "#add zed", "refused", r+"mike@h re: Only the owner or an admin of sip:"+room+"@h can use #add")
		f("ivy", room, "#add zed", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#add bob", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#add zed", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "pub", "#add", "refused", "pub@h>alice@h re: Missing argument: usage #add <user> [<room>]")
}

func TestModify(t *testing.T) {
	f := func(from, to, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		all := func(body string) []string {
			return []string{r + "alice@h re: " + body, r + "adam@h: " + body, r + "mike@h: " + body}
		}
		f("alice", room, "#modify mike admin", append([]string{"ok", "update-member sip:" + room + "@h sip:mike@h flag=2"},
			all("*** <sip:mike@h> is now an admin")...)...)
		f("alice", room, "#modify adam MEMBER", append([]string{"ok", "update-member sip:" + room + "@h sip:adam@h flag=0"},
			all("*** <sip:adam@h> is now a member")...)...)
		// Granting owner transfers the room; the old owner becomes an admin.
		f("alice", room, "#modify mike owner", append([]string{"ok",
			"update-member sip:" + room + "@h sip:mike@h flag=1", "update-member sip:" + room + "@h sip:alice@h flag=2"},
			all("*** <sip:mike@h> is now the owner\n*** <sip:alice@h> is now an admin")...)...)
		f("alice", room, "#modify adam owner", append([]string{"ok",
			"update-member sip:" + room + "@h sip:adam@h flag=1", "update-member sip:" + room + "@h sip:alice@h flag=2"},
			all("*** <sip:adam@h> is now the owner\n*** <sip:alice@h> is now an admin")...)...)
		// Nobody demotes the owner; no-ops are told.
		f("alice", room, "#modify alice member", "refused", r+"alice@h re: The owner cannot be demoted: make another member the owner with '#modify <user> owner'")
		f("alice", room, "#modify alice owner", "refused", r+"alice@h re: sip:alice@h is already the owner")
		f("alice", room, "#modify adam admin", "refused", r+"alice@h re: sip:adam@h is already an admin")
		f("alice", room, "#modify mike member", "refused", r+"alice@h re: sip:mike@h is already a member")
		f("alice", room, "#modify ivy admin", "refused", r+"alice@h re: sip:ivy@h has not accepted the invitation to sip:"+room+"@h yet")
		f("alice", room, "#modify zed admin", "refused", r+"alice@h re: sip:zed@h is not a member of sip:"+room+"@h")
		// Only the owner grants or changes roles.
		f("adam", room, "#modify mike admin", "refused", r+"adam@h re: Only the owner of sip:"+room+"@h can use #modify")
		f("adam", room, "#modify alice member", "refused", r+"adam@h re: Only the owner of sip:"+room+"@h can use #modify")
		f("mike", room, "#modify mike owner", "refused", r+"mike@h re: Only the owner of sip:"+room+"@h can use #modify")
		f("ivy", room, "#modify mike admin", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "#modify mike admin", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("alice", "gone", "#modify mike admin", "refused", "gone@h>alice@h re: Room sip:gone@h does not exist")
	f("alice", "pub", "#modify mike boss", "refused", "pub@h>alice@h re: Bad role 'boss': use owner, admin or member")
	f("alice", "pub", "#modify mike", "refused", "pub@h>alice@h re: Missing argument: usage #modify <user> owner|admin|member [<room>]")
	f("alice", "pub", "#modify mike admin pub x", "refused", "pub@h>alice@h re: Too many parameters: usage #modify <user> owner|admin|member [<room>]")
	f("alice", "mgr", "#modify mike admin", "refused", "chat-manager@h>alice@h re: sip:chat-manager@h is the room manager, not a room: name the room, as in '#modify <user> owner|admin|member <room>'")
	f("alice", "mgr", "#modify mike admin priv", "ok", "update-member sip:priv@h sip:mike@h flag=2",
		"priv@h>alice@h re: *** <sip:mike@h> is now an admin", "priv@h>adam@h: *** <sip:mike@h> is now an admin", "priv@h>mike@h: *** <sip:mike@h> is now an admin")

	// After a transfer the new owner comes first and holds the power.
	w := newWorld(t, nativeRules())
	w.send("alice", "pub", "#modify mike owner")
	if got := members(w.rs, "pub"); got != "mike=1 alice=2 adam=2 ivy=4" {
		t.Errorf("after transfer: %s", got)
	}
	eq(t, "old owner", w.send("alice", "pub", "#destroy"), []string{"refused", "pub@h>alice@h re: Only the owner of sip:pub@h can use #destroy"})
	eq(t, "new owner", w.send("mike", "pub", "#list"), []string{"ok", "pub@h>mike@h re: Members:\n*sip:mike@h\n~sip:adam@h\n~sip:alice@h"})
}
