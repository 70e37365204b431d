package main

import (
	"testing"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

const (
	alice = "sip:alice@127.0.0.1"
	bob   = "sip:bob@127.0.0.1"
	carol = "sip:carol@127.0.0.1"
	dave  = "sip:dave@127.0.0.1"
	erin  = "sip:erin@127.0.0.1"
	zed   = "sip:zed@127.0.0.1"
)

// TestConversation plays a whole conversation through each event transport
// and checks every t_uac_dlg request imcd makes.
func TestConversation(t *testing.T) {
	for _, transport := range []string{"stream", "datagram"} {
		t.Run(transport, func(t *testing.T) {
			f := opensipstest.New(t, opensipstest.Options{})
			p := startIMCD(t, f, procOpts{transport: transport})
			conversation(t, f, p)
		})
	}
}

func conversation(t *testing.T, f *opensipstest.Server, p *proc) {
	r := room1

	step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1",
		want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: joined(bob)}, want{to: bob, body: joined(bob), reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: bob, body: "You are already a member of " + r, reply: true})

	// Unicode, quotes, backslashes, CRLF and a control byte, with the
	// sender's own text/* Content-Type.
	text := "h\u00e9llo \u2713 \u65e5\u672c\u8a9e \U0001f389 \"q\" back\\slash\r\nline2 \x01ctl"
	step(t, f, bob, r, r, text,
		want{to: alice, body: "<bob@127.0.0.1>: " + text, ctype: "text/plain;charset=UTF-8"})
	step(t, f, alice, r, r, "##create is not a command here",
		want{to: bob, body: "<alice@127.0.0.1>: #create is not a command here", ctype: "text/plain;charset=UTF-8"})

	step(t, f, alice, r, r, "#invite carol",
		want{to: carol, body: "INVITE from: alice@127.0.0.1 to " + r + " (Type: '#accept' or '#deny')"},
		want{to: alice, body: "*** invitation sent to <" + carol + ">", reply: true})
	step(t, f, carol, r, r, "hello?",
		want{to: carol, body: "You are invited to " + r + " but have not joined yet: send '#accept' first", reply: true})
	step(t, f, carol, r, r, "#accept",
		want{to: alice, body: joined(carol)}, want{to: bob, body: joined(carol)}, want{to: carol, body: joined(carol), reply: true})

	// An invitation refused by the invitee's side is withdrawn and the
	// inviter told. (One for an invitee who cannot be reached, 404 or 408,
	// is kept for them instead: TestUnreachableInvitee.)
	f.SetStatus(dave, "403 Forbidden")
	step(t, f, alice, r, r, "#invite sip:dave@127.0.0.1",
		want{to: dave, body: "INVITE from: alice@127.0.0.1 to " + r + " (Type: '#accept' or '#deny')"},
		want{to: alice, body: "*** invitation sent to <" + dave + ">", reply: true},
		want{to: alice, body: "*** the invitation to <" + dave + "> could not be delivered (403 Forbidden) and was withdrawn"})
	step(t, f, dave, r, r, "#accept",
		want{to: dave, body: "You have no pending invitation to " + r, reply: true})

	step(t, f, alice, r, r, "#invite erin@127.0.0.1",
		want{to: erin, body: "INVITE from: alice@127.0.0.1 to " + r + " (Type: '#accept' or '#deny')"},
		want{to: alice, body: "*** invitation sent to <" + erin + ">", reply: true})
	step(t, f, erin, r, r, "#deny",
		want{to: erin, body: "You declined the invitation to " + r, reply: true},
		want{to: alice, body: "*** <" + erin + "> declined the invitation"})

	step(t, f, bob, r, r, "#list",
		want{to: bob, body: "Members:\n*" + alice + "\n" + carol + "\n" + bob, reply: true})
	step(t, f, zed, r, r, "I am not a member",
		want{to: zed, body: "You are not a member of " + r, reply: true})
	step(t, f, bob, r, r, "#destroy",
		want{to: bob, body: "Only the owner of " + r + " can use #destroy", reply: true})

	step(t, f, alice, r, r, "#remove bob",
		want{to: bob, body: "You have been removed from this room"},
		want{to: alice, body: "*** <" + bob + "> has been removed", reply: true},
		want{to: carol, body: "*** <" + bob + "> has been removed"})
	step(t, f, carol, r, r, "#exit",
		want{to: carol, body: "You have left the room", reply: true},
		want{to: alice, body: "The user [carol] has left the room"})

	step(t, f, alice, r, r, "#help", want{to: alice, reply: true, body: "\r\n" +
		"#create <room_name> - create new connference room\r\n" +
		"#join [<room_name>] - join the conference room\r\n" +
		"#invite <user_name> [<room_name>] - invite a user to join a conference room\r\n" +
		"#accept - accept invitation to join a conference room\r\n" +
		"#deny - deny invitation to join a conference room\r\n" +
		"#remove <user_name> [<room_name>] - remove an user from the conference room\r\n" +
		"#list - list members is a conference room\r\n" +
		"#exit [<room_name>] - exit from a conference room\r\n" +
		"#destroy [<room_name>] - destroy conference room\r\n" +
		"#create <room_name> private - create a room that others join only by invitation\r\n" +
		"#rooms - list the public rooms and the rooms you are in\r\n" +
		"#add <user_name> [<room_name>] - add a user to the conference room\r\n" +
		"#modify <user_name> owner|admin|member [<room_name>] - change the role of a member\r\n" +
		"#reject, #leave, #members - the same as #deny, #exit, #list\r\n" +
		"##<text> - send a message that starts with #\r\n" +
		"For the owner and admins:\r\n" +
		"#remove <user_name> [<room_name>] [<reason>] - remove a user, saying why\r\n" +
		"#ban <user_name> [<room_name>] [<reason>] - remove a user and keep them out\r\n" +
		"#unban <user_name> [<room_name>] - let a banned user in again\r\n" +
		"#bans [<room_name>] - list the banned users\r\n" +
		"#moderate on|off [<room_name>] - let only the owner, admins and members with voice speak\r\n" +
		"#voice|#devoice <user_name> [<room_name>] - give a member voice, or take it away\r\n"})
	step(t, f, alice, r, r, "#foo bar",
		want{to: alice, body: "invalid command '#foo' - send '#help' for details", reply: true})

	// The room is in imcd's MI as the native module would show it.
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:chat-1@127.0.0.1"},"id":7}`); got !=
		`{"jsonrpc":"2.0","result":{"ROOM":"sip:chat-1@127.0.0.1","MEMBERS":["sip:alice@127.0.0.1"],"NO_MEMBERS":1},"id":7}` {
		t.Errorf("imc_list_members: %s", got)
	}

	step(t, f, alice, r, r, "#destroy",
		want{to: alice, body: "The room has been destroyed", reply: true})
	step(t, f, alice, r, r, "#list",
		want{to: alice, body: "Room " + r + " does not exist", reply: true})
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":8}`); got != `{"jsonrpc":"2.0","result":{"ROOMS":[]},"id":8}` {
		t.Errorf("imc_list_rooms: %s", got)
	}
}
