package mi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

func TestAdminCommands(t *testing.T) {
	admin, ops := recordingAdmin(nil)
	s := newServer(t, state(t, stateInitial), admin)
	room, alice := mustURI(t, "sip:chat-9@example.com"), mustURI(t, "sip:alice@example.com")
	f := func(method, params string, want imc.AdminOp) {
		t.Helper()
		before := len(ops())
		req := fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":%s,"id":7}`, method, params)
		sameBytes(t, req, s.Handle(context.Background(), []byte(req)), []byte(`{"jsonrpc":"2.0","result":"OK","id":7}`))
		got := ops()
		if len(got) != before+1 || got[len(got)-1] != want {
			t.Errorf("%s: ops %+v, want %+v", req, got[before:], want)
		}
	}
	f("imc:create_room", `{"room":"sip:chat-9@example.com","owner":"sip:alice@example.com"}`,
		imc.AdminOp{Kind: imc.AdminCreate, Room: room, User: alice})
	f("imc_create_room", `{"room":"chat-9@example.com","owner":"alice@example.com","private":"Yes"}`,
		imc.AdminOp{Kind: imc.AdminCreate, Room: room, User: alice, Private: true})
	f("imc:create_room", `["sip:chat-9@example.com","sip:alice@example.com","0"]`,
		imc.AdminOp{Kind: imc.AdminCreate, Room: room, User: alice})
	f("imc:destroy_room", `{"room":"sip:chat-9@example.com"}`, imc.AdminOp{Kind: imc.AdminDestroy, Room: room})
	f("imc_destroy_room", `["sip:chat-9@example.com"]`, imc.AdminOp{Kind: imc.AdminDestroy, Room: room})
	f("imc:add_member", `{"room":"sip:chat-9@example.com","user":"sip:alice@example.com:5060"}`,
		imc.AdminOp{Kind: imc.AdminAdd, Room: room, User: alice})
	f("imc_remove_member", `{"user":"sip:alice@example.com","room":"sip:chat-9@example.com"}`,
		imc.AdminOp{Kind: imc.AdminRemove, Room: room, User: alice})
	f("imc:set_role", `{"room":"sip:chat-9@example.com","user":"sip:alice@example.com","role":"Admin"}`,
		imc.AdminOp{Kind: imc.AdminSetRole, Room: room, User: alice, Role: imc.RoleAdmin})
	f("imc_set_role", `["sip:chat-9@example.com","sip:alice@example.com","owner"]`,
		imc.AdminOp{Kind: imc.AdminSetRole, Room: room, User: alice, Role: imc.RoleOwner})
	f("imc:notice", `{"room":"sip:chat-9@example.com","text":"maintenance at 22:00"}`,
		imc.AdminOp{Kind: imc.AdminNotice, Room: room, Text: "maintenance at 22:00"})

	// Moderation, and a reason for a removal.
	f("imc:remove_member", `{"room":"sip:chat-9@example.com","user":"sip:alice@example.com","reason":" off topic "}`,
		imc.AdminOp{Kind: imc.AdminRemove, Room: room, User: alice, Text: "off topic"})
	f("imc:ban", `{"room":"sip:chat-9@example.com","user":"alice@example.com"}`,
		imc.AdminOp{Kind: imc.AdminBan, Room: room, User: alice})
	f("imc_ban", `["sip:chat-9@example.com","sip:alice@example.com","spam, again"]`,
		imc.AdminOp{Kind: imc.AdminBan, Room: room, User: alice, Text: "spam, again"})
	f("imc:unban", `{"room":"sip:chat-9@example.com","user":"sip:alice@example.com"}`,
		imc.AdminOp{Kind: imc.AdminUnban, Room: room, User: alice})
	f("imc_unban", `["sip:chat-9@example.com","sip:alice@example.com"]`,
		imc.AdminOp{Kind: imc.AdminUnban, Room: room, User: alice})
	for mode, on := range map[string]bool{"on": true, "OFF": false, "yes": true, "0": false} {
		f("imc:moderate", `{"room":"sip:chat-9@example.com","mode":"`+mode+`"}`,
			imc.AdminOp{Kind: imc.AdminModerate, Room: room, Moderated: on})
	}
	f("imc_moderate", `["sip:chat-9@example.com","on"]`, imc.AdminOp{Kind: imc.AdminModerate, Room: room, Moderated: true})
}

func TestAdminParamErrors(t *testing.T) {
	admin, ops := recordingAdmin(nil)
	s := newServer(t, state(t, stateInitial), admin)
	f := func(method, params, wantErr string) {
		t.Helper()
		req := fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":%s,"id":1}`, method, params)
		want := `{"jsonrpc":"2.0","error":` + wantErr + `,"id":1}`
		sameBytes(t, req, s.Handle(context.Background(), []byte(req)), []byte(want))
	}
	const count = `{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"}`
	const names = `{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"}`
	f("imc:create_room", `{"room":"sip:r@h"}`, count)
	f("imc:create_room", `{}`, count)
	f("imc:create_room", `{"room":"sip:r@h","user":"sip:a@h"}`, names)
	f("imc:create_room", `{"room":"sip:r@h","owner":"sip:a@h","private":"maybe"}`,
		`{"code":400,"message":"bad param: private","data":"yes, no, 1 or 0"}`)
	f("imc:create_room", `{"room":"","owner":"sip:a@h"}`, `{"code":400,"message":"empty param","data":"room"}`)
	// data is the parser's explanation.
	uriErr := func(s string) string {
		_, err := imc.ParseURI(s)
		return string(jsonrpc.AppendString(nil, err.Error()))
	}
	f("imc:create_room", `{"room":"sip:r@h","owner":"alice"}`,
		`{"code":400,"message":"bad param: owner","data":`+uriErr("alice")+`}`)
	f("imc:create_room", `{"room":5,"owner":"sip:a@h"}`,
		`{"code":-32602,"message":"Invalid params","data":"Parameter 'room' must be a string"}`)
	f("imc:destroy_room", `["sip:r@h","x"]`, count)
	f("imc:add_member", `{"room":"sip:r@h","user":"sip:a@h\r\nX: 1"}`,
		`{"code":400,"message":"bad param: user","data":`+uriErr("sip:a@h\r\nX: 1")+`}`)
	f("imc:set_role", `{"room":"sip:r@h","user":"sip:a@h","role":"boss"}`,
		`{"code":400,"message":"bad param: role","data":"owner, admin or member"}`)
	f("imc:notice", `{"room":"sip:r@h","text":"  "}`, `{"code":400,"message":"empty param","data":"text"}`)
	f("imc:ban", `{"room":"sip:r@h"}`, count)
	f("imc:ban", `{"room":"sip:r@h","user":"sip:a@h","why":"x"}`, names)
	f("imc:ban", `{"room":"sip:r@h","user":""}`, `{"code":400,"message":"empty param","data":"user"}`)
	f("imc:unban", `["sip:r@h","sip:a@h","x"]`, count)
	f("imc:moderate", `{"room":"sip:r@h"}`, count)
	f("imc:moderate", `{"room":"sip:r@h","mode":"maybe"}`, `{"code":400,"message":"bad param: mode","data":"on or off (yes, no, 1, 0)"}`)
	f("imc:bans", `{"room":"chat-9@example.com"}`, `{"code":400,"message":"bad param"}`)
	f("imc:bans", `{"room":"sip:chat-9@example.com"}`, `{"code":404,"message":"no such room"}`)
	if n := len(ops()); n != 0 {
		t.Errorf("%d refused requests reached the daemon", n)
	}
}

func TestAdminErrors(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		admin, _ := recordingAdmin(err)
		s := newServer(t, state(t, stateInitial), admin)
		req := `{"jsonrpc":"2.0","method":"imc:remove_member","params":{"room":"sip:r@h","user":"sip:a@h"},"id":1}`
		sameBytes(t, err.Error(), s.Handle(context.Background(), []byte(req)), []byte(`{"jsonrpc":"2.0","error":`+want+`,"id":1}`))
	}
	wrap := func(e error) error { return fmt.Errorf("sip:a@h in room sip:r@h: %w", e) }
	f(wrap(imc.ErrNoSuchRoom), `{"code":404,"message":"no such room","data":"sip:a@h in room sip:r@h: no such room"}`)
	f(wrap(imc.ErrNotMember), `{"code":404,"message":"no such member","data":"sip:a@h in room sip:r@h: not a member"}`)
	f(wrap(imc.ErrRoomExists), `{"code":400,"message":"room exists","data":"sip:a@h in room sip:r@h: room exists"}`)
	f(wrap(imc.ErrAlreadyMember), `{"code":400,"message":"already a member","data":"sip:a@h in room sip:r@h: already a member"}`)
	f(wrap(imc.ErrOwner), `{"code":400,"message":"not allowed on the owner","data":"sip:a@h in room sip:r@h: operation not allowed on the owner"}`)
	f(wrap(imc.ErrTooLong), `{"code":400,"message":"value too long","data":"sip:a@h in room sip:r@h: value too long"}`)
	f(fmt.Errorf("%w: Room sip:r@h not created", imc.ErrPolicy),
		`{"code":403,"message":"not allowed by the room policy","data":"not allowed by the room policy: Room sip:r@h not created"}`)
	f(wrap(imc.ErrBadArgument), `{"code":400,"message":"bad param","data":"sip:a@h in room sip:r@h: bad argument"}`)
	f(wrap(imc.ErrBanned), `{"code":400,"message":"user is banned","data":"sip:a@h in room sip:r@h: banned from the room"}`)
	f(wrap(imc.ErrNotBanned), `{"code":404,"message":"no such ban","data":"sip:a@h in room sip:r@h: not banned"}`)
	f(errors.New("store: commit: database unavailable"), `{"code":500,"message":"store: commit: database unavailable"}`)
	f(context.DeadlineExceeded, `{"code":500,"message":"context deadline exceeded"}`)
}

// TestBansCommand: imc:bans lists a room's bans from the rooms, in order of
// user, the reason byte for byte (invalid UTF-8 passes raw, as OpenSIPS
// passes it).
func TestBansCommand(t *testing.T) {
	admin, _ := recordingAdmin(nil)
	rooms := state(t, stateInitial)
	r := rooms.Room("native-1@127.0.0.1")
	rooms.Put(r.WithModeration(imc.Moderation{Bans: []imc.Ban{
		{User: mustURI(t, "sip:zed@127.0.0.1"), Reason: "said \"no\"\xff", By: mustURI(t, "sip:alice@127.0.0.1")},
		{User: mustURI(t, "sip:eve@example.com")},
	}}))
	s := newServer(t, rooms, admin)
	f := func(req, want string) {
		t.Helper()
		sameBytes(t, req, s.Handle(context.Background(), []byte(req)), []byte(want))
	}
	f(`{"jsonrpc":"2.0","method":"imc:bans","params":{"room":"sip:NATIVE-1@127.0.0.1"},"id":3}`,
		`{"jsonrpc":"2.0","result":{"ROOM":"sip:NATIVE-1@127.0.0.1","BANS":[`+
			`{"USER":"sip:eve@example.com","BY":"","REASON":""},`+
			`{"USER":"sip:zed@127.0.0.1","BY":"sip:alice@127.0.0.1","REASON":"said \"no\"`+"\xff"+`"}],"NO_BANS":2},"id":3}`)
	f(`{"jsonrpc":"2.0","method":"imc_bans","params":["sip:native-2@127.0.0.1"],"id":4}`,
		`{"jsonrpc":"2.0","result":{"ROOM":"sip:native-2@127.0.0.1","BANS":[],"NO_BANS":0},"id":4}`)
}

// TestReadOnlyCommands: without an Admin only the native module's commands
// exist.
func TestReadOnlyCommands(t *testing.T) {
	cmds := IMCCommands(state(t, stateEmpty), nil)
	if len(cmds) != 2 || cmds[0].Name != "imc:list_rooms" || cmds[1].Name != "imc:list_members" {
		t.Errorf("read-only commands: %+v", cmds)
	}
}
