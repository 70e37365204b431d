package mi

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// statesFunc is a MemberStates double.
type statesFunc func(room imc.URI, members []imc.URI) []MemberState

func (f statesFunc) MemberStates(room imc.URI, members []imc.URI) []MemberState {
	return f(room, members)
}

var _ MemberStates = statesFunc(nil)

func TestMemberStatus(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	rs := state(t, stateInitial)
	// dave is invited, not yet a member.
	r := rs.Room("native-1@127.0.0.1")
	ms := r.Members()
	for i := range ms {
		if ms[i].URI.User == "dave" {
			ms[i].Flags |= imc.MemberInvited
		}
	}
	rs.Put(imc.NewRoom(r.URI, r.Flags, ms))
	var asked []string
	states := statesFunc(func(room imc.URI, members []imc.URI) []MemberState {
		asked = append(asked, room.String())
		out := make([]MemberState, len(members))
		for i, m := range members {
			out[i] = MemberState{Reachable: true}
			if m.User == "carol" {
				out[i] = MemberState{Since: now.Add(-95 * time.Second), NextRetry: now.Add(25 * time.Second), Kept: 7, Dropped: 2, InFlight: 1}
			}
		}
		return out
	})
	reg := NewRegistry()
	cmd := MemberStatusCommand(rs, states)
	cmd.Handler = memberStatus{rooms: rs, states: states, now: func() time.Time { return now }}.handle
	if err := reg.Register(cmd); err != nil {
		t.Fatal(err)
	}
	s := &Server{Registry: reg, Logger: testLogger}
	f := func(method, params, want string) {
		t.Helper()
		req := `{"jsonrpc":"2.0","method":"` + method + `","params":` + params + `,"id":1}`
		sameBytes(t, params, s.Handle(context.Background(), []byte(req)), []byte(`{"jsonrpc":"2.0",`+want+`,"id":1}`))
	}
	f("imc:member_status", `{"room":"sip:native-1@127.0.0.1"}`, `"result":{"ROOM":"sip:native-1@127.0.0.1","MEMBERS":[`+
		`{"URI":"sip:alice@127.0.0.1","ROLE":"owner","STATE":"reachable","KEPT":0,"DROPPED":0,"IN_FLIGHT":0},`+
		`{"URI":"sip:dave@127.0.0.1","ROLE":"invited","STATE":"reachable","KEPT":0,"DROPPED":0,"IN_FLIGHT":0},`+
		`{"URI":"sip:carol@127.0.0.1","ROLE":"member","STATE":"unreachable","UNREACHABLE_FOR":95,"RETRY_IN":25,"KEPT":7,"DROPPED":2,"IN_FLIGHT":1},`+
		`{"URI":"sip:bob@127.0.0.1","ROLE":"member","STATE":"reachable","KEPT":0,"DROPPED":0,"IN_FLIGHT":0}],"NO_MEMBERS":4,"NO_UNREACHABLE":1}`)
	if len(asked) != 1 || asked[0] != "sip:native-1@127.0.0.1" {
		t.Fatalf("states asked for %v", asked)
	}
	f("imc_member_status", `["SIP:Native-2@127.0.0.1;transport=tcp"]`, `"result":{"ROOM":"SIP:Native-2@127.0.0.1;transport=tcp","MEMBERS":[`+
		`{"URI":"sip:bob@127.0.0.1","ROLE":"owner","STATE":"reachable","KEPT":0,"DROPPED":0,"IN_FLIGHT":0},`+
		`{"URI":"sip:carol@127.0.0.1","ROLE":"member","STATE":"unreachable","UNREACHABLE_FOR":95,"RETRY_IN":25,"KEPT":7,"DROPPED":2,"IN_FLIGHT":1}],"NO_MEMBERS":2,"NO_UNREACHABLE":1}`)
	f("imc:member_status", `{"room":""}`, `"error":{"code":400,"message":"empty param"}`)
	f("imc:member_status", `{"room":"native-1@127.0.0.1"}`, `"error":{"code":400,"message":"bad param"}`)
	f("imc:member_status", `{"room":"sip:native-9@127.0.0.1"}`, `"error":{"code":404,"message":"no such room"}`)
	f("imc:member_status", `{"user":"sip:native-1@127.0.0.1"}`, `"error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"}`)
	// imc_list_members is untouched by the delivery state.
	list := newServer(t, rs, nil)
	sameBytes(t, "list_members", list.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:native-1@127.0.0.1"},"id":2}`)),
		[]byte(`{"jsonrpc":"2.0","result":{"ROOM":"sip:native-1@127.0.0.1","MEMBERS":["sip:alice@127.0.0.1","sip:dave@127.0.0.1","sip:carol@127.0.0.1","sip:bob@127.0.0.1"],"NO_MEMBERS":4},"id":2}`))
}

// TestMemberStatusDocumented: docs/mi.md has the command's section and
// alias (TestDocsComplete checks the parts of every section).
func TestMemberStatusDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/mi.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := MemberStatusCommand(imc.NewRooms(), statesFunc(nil))
	if !strings.Contains(string(b), "### "+cmd.Name+"\n") || !strings.Contains(string(b), "- **Aliases**: `"+cmd.Aliases[0]+"`") {
		t.Fatalf("docs/mi.md does not document %s (%s)", cmd.Name, cmd.Aliases[0])
	}
}
