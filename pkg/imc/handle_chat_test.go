package imc

import (
	"strings"
	"testing"
)

func TestChat(t *testing.T) {
	f := func(from, to, ct, body string, want ...string) {
		t.Helper()
		w := newWorld(t, nativeRules())
		w.ct = ct
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	for _, room := range []string{"pub", "priv"} {
		r := room + "@h>"
		// Every other active member; no echo, no pending invitee.
		f("alice", room, "", "hello", "ok", r+"adam@h: <alice@h>: hello", r+"mike@h: <alice@h>: hello")
		f("adam", room, "", "hello", "ok", r+"alice@h: <adam@h>: hello", r+"mike@h: <adam@h>: hello")
		f("mike", room, "", "hello", "ok", r+"alice@h: <mike@h>: hello", r+"adam@h: <mike@h>: hello")
		f("ivy", room, "", "hello", "refused", r+"ivy@h re: You are invited to sip:"+room+"@h but have not joined yet: send '#accept' first")
		f("zed", room, "", "hello", "refused", r+"zed@h re: You are not a member of sip:"+room+"@h")
	}
	f("zed", "gone", "", "hello", "refused", "gone@h>zed@h re: Room sip:gone@h does not exist")
	f("zed", "mgr", "", "hello", "refused", "chat-manager@h>zed@h re: sip:chat-manager@h is the room manager, not a room: send '#help' for the commands")

	// The sender's address as given; the room by any case; lines kept whole.
	f("sip:Mike@H:5070;transport=tcp", "sip:PUB@h", "", "multi\r\nline", "ok", "pub@h>alice@h: <Mike@H>: multi\r\nline", "pub@h>adam@h: <Mike@H>: multi\r\nline")
	// "##" escapes the start character.
	f("mike", "pub", "", "##tag", "ok", "pub@h>alice@h: <mike@h>: #tag", "pub@h>adam@h: <mike@h>: #tag")
	f("mike", "pub", "", "##", "ok", "pub@h>alice@h: <mike@h>: #", "pub@h>adam@h: <mike@h>: #")
	f("mike", "pub", "", " #join", "ok", "pub@h>alice@h: <mike@h>:  #join", "pub@h>adam@h: <mike@h>:  #join")

	// Content-Type: text/* kept when safe, else text/plain; non-text refused.
	f("mike", "pub", "text/plain;charset=UTF-8", "hé", "ok",
		"pub@h>alice@h: <mike@h>: hé [ct=text/plain;charset=UTF-8]", "pub@h>adam@h: <mike@h>: hé [ct=text/plain;charset=UTF-8]")
	f("mike", "pub", "TEXT/HTML", "<b>x</b>", "ok", "pub@h>alice@h: <mike@h>: <b>x</b> [ct=TEXT/HTML]", "pub@h>adam@h: <mike@h>: <b>x</b> [ct=TEXT/HTML]")
	f("mike", "pub", " text/plain; charset=utf-8 ", "x", "ok", "pub@h>alice@h: <mike@h>: x [ct=text/plain; charset=utf-8]", "pub@h>adam@h: <mike@h>: x [ct=text/plain; charset=utf-8]")
	for _, unsafe := range []string{`text/plain; charset="utf-8"`, "text/plain\r\nX-Evil: 1", "text/plain;a=<b>", "text/pl ain", "text/", "text/;a=b", "text/a/b", "text/x;" + strings.Repeat("a", 130)} {
		f("mike", "pub", unsafe, "x", "ok", "pub@h>alice@h: <mike@h>: x", "pub@h>adam@h: <mike@h>: x")
	}
	f("mike", "pub", "image/png", "x", "refused", "pub@h>mike@h re: Message not sent: only text can be sent to the room, not 'image/png'")
	f("mike", "pub", "application/im-iscomposing+xml", "<x/>", "refused", "pub@h>mike@h re: Message not sent: only text can be sent to the room, not 'application/im-iscomposing+xml'")
	f("mike", "pub", "evil\r\n", "x", "refused", "pub@h>mike@h re: Message not sent: only text can be sent to the room, not 'evil??'")

	// Empty and oversized lines.
	for _, empty := range []string{"", " ", "\r\n", " \t "} {
		f("mike", "pub", "", empty, "refused", "pub@h>mike@h re: Empty message not sent")
	}
	f("mike", "pub", "", strings.Repeat("x", 1023), "ok", "pub@h>alice@h: <mike@h>: "+strings.Repeat("x", 1023), "pub@h>adam@h: <mike@h>: "+strings.Repeat("x", 1023))
	f("mike", "pub", "", strings.Repeat("x", 1024), "refused", "pub@h>mike@h re: Message not sent: it is longer than 1023 bytes")
	// The limit applies to the text after the "##" escape.
	f("mike", "pub", "", "#"+strings.Repeat("#", 1023), "ok", "pub@h>alice@h: <mike@h>: "+strings.Repeat("#", 1023), "pub@h>adam@h: <mike@h>: "+strings.Repeat("#", 1023))

	w := newWorld(t, Config{StartChar: '#', MaxBody: 5})
	eq(t, "MaxBody 5", w.send("mike", "pub", "123456"), []string{"refused", "pub@h>mike@h re: Message not sent: it is longer than 5 bytes"})
	w = newWorld(t, Config{StartChar: '#'})
	eq(t, "no limit", w.send("mike", "pub", strings.Repeat("y", 5000))[1:2], []string{"pub@h>alice@h: <mike@h>: " + strings.Repeat("y", 5000)})

	// Alone in a room: nothing to send, nothing to refuse.
	w = newWorld(t, nativeRules())
	w.rs.Put(NewRoom(uri(t, "solo"), 0, []Member{{uri(t, "alice"), MemberOwner}, {uri(t, "ivy"), MemberInvited}}))
	eq(t, "alone", w.send("alice", "solo", "anyone?"), []string{"ok"})
}

// TestManager covers requests to the manager URI.
func TestManager(t *testing.T) {
	w := newWorld(t, nativeRules())
	f := func(from, to, body string, want ...string) {
		t.Helper()
		eq(t, from+" "+to+" "+body, w.send(from, to, body), want)
	}
	f("zed", "mgr", "#create chat-2 private", "ok", "create-room sip:chat-2@h flag=1", "add-member sip:chat-2@h sip:zed@h flag=1",
		"chat-2@h>zed@h re: *** room was created")
	f("zed", "mgr", "#invite bob chat-2", "ok", "add-member sip:chat-2@h sip:bob@h flag=4",
		"chat-2@h>bob@h: INVITE from: zed@h to sip:chat-2@h (Type: '#accept' or '#deny') [inv chat-2@h bob@h by zed@h]",
		"chat-2@h>zed@h re: *** invitation sent to <sip:bob@h>")
	f("bob", "mgr", "#accept chat-2", "ok", "update-member sip:chat-2@h sip:bob@h flag=0",
		"chat-2@h>zed@h: *** <sip:bob@h> has joined the room", "chat-2@h>bob@h re: *** <sip:bob@h> has joined the room")
	f("bob", "sip:chat-2@h", "hi zed", "ok", "chat-2@h>zed@h: <bob@h>: hi zed")
	f("bob", "mgr", "hi zed", "refused", "chat-manager@h>bob@h re: sip:chat-manager@h is the room manager, not a room: send '#help' for the commands")
	f("bob", "sip:CHAT-MANAGER@h", "#destroy", "refused", "CHAT-MANAGER@h>bob@h re: sip:CHAT-MANAGER@h is the room manager, not a room: name the room, as in '#destroy <room>'")
	f("zed", "mgr", "#destroy chat-2", "ok", "delete-room sip:chat-2@h",
		"chat-2@h>zed@h re: The room has been destroyed", "chat-2@h>bob@h: The room has been destroyed")

	// Without a manager every request URI is a room, chat-manager too.
	w = newWorld(t, Config{StartChar: '#', CreateOnJoin: true})
	f("zed", "mgr", "#join", "ok", "create-room sip:chat-manager@h flag=0", "add-member sip:chat-manager@h sip:zed@h flag=1",
		"chat-manager@h>zed@h re: *** room was created")
	f("zed", "mgr", "hi", "ok")
}

// TestInReplyTo: the Call-ID goes on the notices that reach the sender, and
// only when it is safe to put in a header.
func TestInReplyTo(t *testing.T) {
	e := NewEngine(nativeRules())
	rs := fixture(t)
	for id, want := range map[string]string{
		"abc@host":                      "abc@host",
		"a-b.c_d!%*+`'~()<>:\"/[]?{}@x": "a-b.c_d!%*+`'~()<>:\"/[]?{}@x",
		"":                              "",
		"a b":                           "",
		"a\r\nX: y":                     "",
		"caf\xe9":                       "",
		strings.Repeat("x", 256):        "",
	} {
		in, err := e.Prepare(Request{From: "sip:zed@h", RURI: "sip:pub@h", Body: "#join", CallID: id})
		if err != nil {
			t.Fatal(err)
		}
		res := e.Handle(rs, in)
		for _, n := range res.Notices {
			wantID := ""
			if n.To.Equal(in.From) {
				wantID = want
			}
			if n.InReplyTo != wantID {
				t.Errorf("Call-ID %q: notice to %s has InReplyTo %q, want %q", id, n.To, n.InReplyTo, wantID)
			}
		}
		if got := e.Unavailable(in).Notices[0].InReplyTo; got != want {
			t.Errorf("Call-ID %q: Unavailable InReplyTo %q", id, got)
		}
	}
}
