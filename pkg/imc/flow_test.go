package imc

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// table is a strict stand-in for the imc tables: it refuses any change a
// database with the standard unique keys would refuse or silently ignore,
// so that a Result's changes are known to be complete and ordered.
type table struct {
	rooms   map[string]RoomFlags              // imc_rooms by name@domain
	members map[string]map[string]MemberFlags // imc_members by room, then user@domain
	// imcd's moderation tables: bans and voices by room, then user@domain
	// (the reason of a ban); moderated rooms.
	bans      map[string]map[string]string
	voices    map[string]map[string]bool
	moderated map[string]bool
}

func newTable(rs *Rooms) *table {
	tb := &table{rooms: map[string]RoomFlags{}, members: map[string]map[string]MemberFlags{},
		bans: map[string]map[string]string{}, voices: map[string]map[string]bool{}, moderated: map[string]bool{}}
	rs.EachRoom(func(r *Room) bool {
		k := r.Key()
		tb.rooms[k] = r.Flags
		tb.members[k], tb.bans[k], tb.voices[k] = map[string]MemberFlags{}, map[string]string{}, map[string]bool{}
		for _, m := range r.Members() {
			tb.members[k][m.URI.Key()] = m.Flags
		}
		mod := r.Moderation()
		tb.moderated[k] = mod.Moderated
		for _, b := range mod.Bans {
			tb.bans[k][b.User.Key()] = b.Reason
		}
		for _, v := range mod.Voiced {
			tb.voices[k][v.Key()] = true
		}
		return true
	})
	return tb
}

func (tb *table) apply(changes []Change) error {
	for _, c := range changes {
		room, member := c.Room.Key(), c.Member.Key()
		_, exists := tb.rooms[room]
		if !exists && c.Op != OpCreateRoom {
			return fmt.Errorf("%v: no such room", c)
		}
		switch c.Op {
		case OpCreateRoom:
			if exists {
				return fmt.Errorf("%v: duplicate room", c)
			}
			tb.rooms[room] = c.RoomFlags
			tb.members[room], tb.bans[room], tb.voices[room] = map[string]MemberFlags{}, map[string]string{}, map[string]bool{}
			tb.moderated[room] = false
		case OpDeleteRoom:
			delete(tb.rooms, room)
			delete(tb.members, room)
			delete(tb.bans, room)
			delete(tb.voices, room)
			delete(tb.moderated, room)
		case OpUpdateRoom:
			tb.rooms[room] = c.RoomFlags
		case OpAddMember:
			if _, ok := tb.members[room][member]; ok {
				return fmt.Errorf("%v: duplicate member", c)
			}
			tb.members[room][member] = c.MemberFlags
		case OpUpdateMember:
			if _, ok := tb.members[room][member]; !ok {
				return fmt.Errorf("%v: no such member", c)
			}
			tb.members[room][member] = c.MemberFlags
		case OpRemoveMember:
			if _, ok := tb.members[room][member]; !ok {
				return fmt.Errorf("%v: no such member", c)
			}
			delete(tb.members[room], member)
			delete(tb.voices[room], member)
		case OpModerate, OpUnmoderate:
			if tb.moderated[room] == (c.Op == OpModerate) {
				return fmt.Errorf("%v: the room is so already", c)
			}
			tb.moderated[room] = c.Op == OpModerate
		case OpVoice, OpDevoice:
			if f, ok := tb.members[room][member]; !ok || f&MemberInvited != 0 {
				return fmt.Errorf("%v: no such active member", c)
			}
			if tb.voices[room][member] == (c.Op == OpVoice) {
				return fmt.Errorf("%v: the member has it so already", c)
			}
			if c.Op == OpVoice {
				tb.voices[room][member] = true
			} else {
				delete(tb.voices[room], member)
			}
		case OpBan:
			if _, ok := tb.members[room][member]; ok {
				return fmt.Errorf("%v: a banned user still a member", c)
			}
			if _, ok := tb.bans[room][member]; ok {
				return fmt.Errorf("%v: duplicate ban", c)
			}
			tb.bans[room][member] = c.Reason
		case OpUnban:
			if _, ok := tb.bans[room][member]; !ok {
				return fmt.Errorf("%v: no such ban", c)
			}
			delete(tb.bans[room], member)
		default:
			return fmt.Errorf("%v: unknown op", c)
		}
		if len(c.Room.String()) > MaxFieldLen || len(c.Member.User) > MaxFieldLen || len(c.Member.Host) > MaxFieldLen {
			return fmt.Errorf("%v: too long for the columns", c)
		}
	}
	return nil
}

// same reports how the table and the rooms in memory differ, or "".
func (tb *table) same(rs *Rooms) string {
	var diff []string
	if len(tb.rooms) != rs.Len() {
		diff = append(diff, fmt.Sprintf("%d rooms in the table, %d in memory", len(tb.rooms), rs.Len()))
	}
	for key, flags := range tb.rooms {
		r := rs.Room(key)
		if r == nil || r.Flags != flags {
			diff = append(diff, "room "+key)
			continue
		}
		if len(r.Members()) != len(tb.members[key]) {
			diff = append(diff, "member count of "+key)
		}
		owners := 0
		for _, m := range r.Members() {
			if tb.members[key][m.URI.Key()] != m.Flags {
				diff = append(diff, "member "+m.URI.Key()+" of "+key)
			}
			if m.Owner() {
				owners++
			}
		}
		if owners > 1 {
			diff = append(diff, "two owners in "+key)
		}
		mod := r.Moderation()
		if mod.Moderated != tb.moderated[key] || len(mod.Bans) != len(tb.bans[key]) || len(mod.Voiced) != len(tb.voices[key]) {
			diff = append(diff, "moderation of "+key)
		}
		for _, b := range mod.Bans {
			if reason, ok := tb.bans[key][b.User.Key()]; !ok || reason != b.Reason {
				diff = append(diff, "ban "+b.User.Key()+" of "+key)
			}
		}
		for _, v := range mod.Voiced {
			if !tb.voices[key][v.Key()] {
				diff = append(diff, "voice "+v.Key()+" of "+key)
			}
		}
	}
	sort.Strings(diff)
	return strings.Join(diff, "; ")
}

// TestFlow runs a conversation through Handle, a strict table and
// Rooms.Apply, checking after each step that the next Handle sees the state
// the last one made, and that memory equals the table.
func TestFlow(t *testing.T) {
	w := newWorld(t, nativeRules())
	w.rs = NewRooms()
	tb := newTable(w.rs)
	step := func(from, to, body, state string, want ...string) {
		t.Helper()
		res := w.e.Handle(w.rs, prepare(t, w.e, from, to, body))
		checkResult(t, res)
		if err := tb.apply(res.Changes); err != nil {
			t.Fatalf("%s %q: %v", from, body, err)
		}
		w.rs.Apply(res.Changes)
		if d := tb.same(w.rs); d != "" {
			t.Fatalf("%s %q: memory differs from the table: %s", from, body, d)
		}
		if want != nil {
			eq(t, from+" "+body, render(res), want)
		}
		if got := members(w.rs, "c1"); got != state {
			t.Errorf("%s %q: c1 is %q, want %q", from, body, got, state)
		}
	}
	step("ann", "mgr", "#create c1 private", "ann=1")
	step("ann", "c1", "#invite bea", "ann=1 bea=4")
	step("bea", "c1", "hi", "ann=1 bea=4", "refused", "c1@h>bea@h re: You are invited to sip:c1@h but have not joined yet: send '#accept' first")
	step("bea", "c1", "#accept", "ann=1 bea=0")
	step("bea", "c1", "hi", "ann=1 bea=0", "ok", "c1@h>ann@h: <bea@h>: hi")
	step("cal", "c1", "#join", "ann=1 bea=0", "refused", "c1@h>cal@h re: Room sip:c1@h is private: you need an invitation to join it")
	step("ann", "c1", "#add cal", "ann=1 bea=0 cal=0")
	step("ann", "c1", "#modify bea admin", "ann=1 bea=2 cal=0")
	step("bea", "c1", "#invite dan", "ann=1 bea=2 cal=0 dan=4")
	step("dan", "c1", "#reject", "ann=1 bea=2 cal=0")
	step("bea", "c1", "#invite dan", "ann=1 bea=2 cal=0 dan=4")
	step("bea", "c1", "#remove dan", "ann=1 bea=2 cal=0")
	step("bea", "c1", "#remove cal", "ann=1 bea=2")
	step("ann", "c1", "#modify bea owner", "bea=1 ann=2")
	step("ann", "c1", "#exit", "bea=1")
	step("bea", "c1", "#list", "bea=1", "ok", "c1@h>bea@h re: Members:\n*sip:bea@h")
	step("bea", "c1", "#modify bea member", "bea=1")
	step("bea", "c1", "#leave", "-")
	step("bea", "c1", "#list", "-", "refused", "c1@h>bea@h re: Room sip:c1@h does not exist")
	step("bea", "c1", "#join", "bea=1")
	step("bea", "c1", "#destroy", "-")
	if w.rs.Len() != 0 {
		t.Errorf("%d rooms left", w.rs.Len())
	}
}

func prepare(t testing.TB, e *Engine, from, to, body string) Input {
	t.Helper()
	in, err := e.Prepare(Request{From: addr(from), RURI: addr(to), Body: body, CallID: cid})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestHandleDoesNotMutate: Handle reads the view and changes nothing in it;
// a *Room held across Apply keeps its contents.
func TestHandleDoesNotMutate(t *testing.T) {
	e := NewEngine(nativeRules())
	rs := fixture(t)
	before := rs.Room("pub@h")
	snapshot := members(rs, "pub")
	for _, body := range []string{"#join", "#invite bob", "#modify mike owner", "#remove adam", "#destroy", "#exit", "#add bob", "hi",
		"#ban mike", "#ban zed", "#moderate on", "#voice mike"} {
		e.Handle(rs, prepare(t, e, "alice", "pub", body))
		if members(rs, "pub") != snapshot {
			t.Fatalf("%q changed the view", body)
		}
	}
	rs.Apply(e.Handle(rs, prepare(t, e, "alice", "pub", "#modify mike owner")).Changes)
	if got := membersOf(before); got != snapshot {
		t.Errorf("held *Room changed by Apply: %s", got)
	}
}

func membersOf(r *Room) string {
	rs := NewRooms()
	rs.Put(r)
	return members(rs, r.URI.User)
}
