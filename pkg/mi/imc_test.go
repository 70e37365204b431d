package mi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
)

func TestListRoomsOrderAndOwner(t *testing.T) {
	a := mustURI(t, "sip:alice@example.com")
	rs := roomsOf(
		room(t, "sip:b@example.org", "sip:bob@example.org"),
		room(t, "sip:b@example.com", "sip:bob@example.com", "sip:carol@example.com"),
		room(t, "sip:a@example.net", "sip:alice@example.net"),
		// A room without an owner (a native database may hold one), with a
		// pending invitee, who counts as a member natively.
		imc.NewRoom(mustURI(t, "sip:c@example.com"), imc.RoomPrivate, []imc.Member{{URI: a}, {URI: mustURI(t, "sip:x@example.com"), Flags: imc.MemberInvited}}),
	)
	s := newServer(t, rs, nil)
	got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc:list_rooms","id":1}`))
	want := `{"jsonrpc":"2.0","result":{"ROOMS":[` +
		`{"URI":"sip:a@example.net","MEMBERS":1,"OWNER":"sip:alice@example.net"},` +
		`{"URI":"sip:b@example.com","MEMBERS":2,"OWNER":"sip:bob@example.com"},` +
		`{"URI":"sip:b@example.org","MEMBERS":1,"OWNER":"sip:bob@example.org"},` +
		`{"URI":"sip:c@example.com","MEMBERS":2,"OWNER":""}]},"id":1}`
	sameBytes(t, "list_rooms", got, []byte(want))
}

// TestListEscaping: addresses a native database may hold, which imc's
// parser refuses, still come out as valid JSON.
func TestListEscaping(t *testing.T) {
	odd := imc.URI{User: `we"ird\`, Host: "h\x01"}
	rs := roomsOf(imc.NewRoom(odd, 0, []imc.Member{{URI: odd, Flags: imc.MemberOwner}}))
	s := newServer(t, rs, nil)
	got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc:list_rooms","id":1}`))
	var v struct {
		Result struct{ ROOMS []struct{ URI, OWNER string } }
	}
	if err := json.Unmarshal(got, &v); err != nil || len(v.Result.ROOMS) != 1 || v.Result.ROOMS[0].URI != odd.String() || v.Result.ROOMS[0].OWNER != odd.String() {
		t.Errorf("list_rooms with odd addresses: %s (%v)", got, err)
	}
}

func TestListMembers(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	f := func(params, want string) {
		t.Helper()
		req := `{"jsonrpc":"2.0","method":"imc:list_members","params":` + params + `,"id":1}`
		sameBytes(t, params, s.Handle(context.Background(), []byte(req)), []byte(`{"jsonrpc":"2.0",`+want+`,"id":1}`))
	}
	members := `"MEMBERS":["sip:bob@127.0.0.1","sip:carol@127.0.0.1"],"NO_MEMBERS":2}`
	f(`{"room":"sip:native-2@127.0.0.1"}`, `"result":{"ROOM":"sip:native-2@127.0.0.1",`+members)
	f(`{"room":"SIPS:Native-2@127.0.0.1:5061;transport=tls"}`, `"result":{"ROOM":"SIPS:Native-2@127.0.0.1:5061;transport=tls",`+members)
	// The native module requires a URI with a scheme.
	f(`{"room":"native-2@127.0.0.1"}`, `"error":{"code":400,"message":"bad param"}`)
	f(`{"room":"tel:+123"}`, `"error":{"code":400,"message":"bad param"}`)
	f(`{"room":"sip:native-2@127.0.0.1\r\nX: y"}`, `"error":{"code":400,"message":"bad param"}`)
	f(`{"room":"sip:native-9@127.0.0.1"}`, `"error":{"code":404,"message":"no such room"}`)
}

// lockedView is a daemon-like view: a writer replaces rooms under the lock
// while the MI reads.
type lockedView struct {
	mu sync.RWMutex
	rs *imc.Rooms
}

func (v *lockedView) Room(key string) *imc.Room {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.rs.Room(key)
}

func (v *lockedView) EachRoom(fn func(*imc.Room) bool) {
	v.mu.RLock()
	var rooms []*imc.Room
	v.rs.EachRoom(func(r *imc.Room) bool { rooms = append(rooms, r); return true })
	v.mu.RUnlock()
	for _, r := range rooms {
		if !fn(r) {
			return
		}
	}
}

// TestConsistentSnapshot runs the list commands while members join and
// leave: every reply shows one state of the room, never a torn one (the
// member list and its count agree, and no member is listed twice). With
// -race it also shows that the MI reads no state a writer changes.
func TestConsistentSnapshot(t *testing.T) {
	roomURI := mustURI(t, "sip:busy@example.com")
	v := &lockedView{rs: roomsOf(room(t, roomURI.String(), "sip:owner@example.com"))}
	s := newServer(t, v, nil)
	const rounds = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range rounds {
			u := mustURI(t, fmt.Sprintf("sip:u%d@example.com", i%7))
			op := imc.OpAddMember
			if r := v.Room(roomURI.Key()); r != nil {
				if _, ok := r.Member(u); ok {
					op = imc.OpRemoveMember
				}
			}
			v.mu.Lock()
			v.rs.Apply([]imc.Change{{Op: op, Room: roomURI, Member: u}})
			v.mu.Unlock()
		}
	}()
	for range rounds {
		got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc_list_members","params":["sip:busy@example.com"],"id":1}`))
		var r struct {
			Result struct {
				MEMBERS    []string
				NO_MEMBERS int
			}
		}
		if err := json.Unmarshal(got, &r); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		seen := map[string]bool{}
		for _, m := range r.Result.MEMBERS {
			if seen[m] {
				t.Fatalf("member listed twice: %s", got)
			}
			seen[m] = true
		}
		if len(r.Result.MEMBERS) != r.Result.NO_MEMBERS || r.Result.MEMBERS[0] != "sip:owner@example.com" {
			t.Fatalf("torn room: %s", got)
		}
		if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":2}`)); !strings.Contains(string(got), `"OWNER":"sip:owner@example.com"`) {
			t.Fatalf("list_rooms: %s", got)
		}
	}
	wg.Wait()
}
