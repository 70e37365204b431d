package imc

import (
	"strconv"
	"testing"
)

// bigRoom is a public room of n active members, user0 its owner.
func bigRoom(b *testing.B, n int) *Rooms {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{URI: URI{User: "user" + strconv.Itoa(i), Host: "example.com"}}
	}
	ms[0].Flags = MemberOwner
	rs := NewRooms()
	rs.Put(NewRoom(URI{User: "chat-1", Host: "example.com"}, 0, ms))
	return rs
}

// BenchmarkChat100: one chat line into a 100-member room, Prepare and
// Handle, as a shard runs it.
func BenchmarkChat100(b *testing.B) {
	benchChat(b, bigRoom(b, 100), "sip:user42@example.com;transport=tcp")
}

// benchChat runs a chat line from "from" into chat-1 of rs, a room of 100.
func benchChat(b *testing.B, rs *Rooms, from string) {
	e := NewEngine(DefaultConfig())
	req := Request{From: from, RURI: "sip:chat-1@example.com", Body: "hello everybody, how are you today?", ContentType: "text/plain;charset=UTF-8", CallID: "abc@h"}
	b.ReportAllocs()
	for b.Loop() {
		in, err := e.Prepare(req)
		if err != nil {
			b.Fatal(err)
		}
		if res := e.Handle(rs, in); len(res.Notices) != 99 {
			b.Fatalf("%d notices", len(res.Notices))
		}
	}
}

// BenchmarkChatModerated100: BenchmarkChat100 in a moderated room with
// bans, the sender given voice: the moderation checks cost no allocation.
func BenchmarkChatModerated100(b *testing.B) {
	rs := bigRoom(b, 100)
	rs.Put(rs.Room("chat-1@example.com").WithModeration(Moderation{Moderated: true, Voiced: []URI{{User: "user42", Host: "example.com"}},
		Bans: []Ban{{User: URI{User: "troll", Host: "example.com"}}}}))
	benchChat(b, rs, "sip:User42@example.com;transport=tcp")
}

// BenchmarkJoin: a #join into a 100-member room (refused: the sender is a
// member already, so the room stays the same size) and a new joiner.
func BenchmarkJoin(b *testing.B) {
	e := NewEngine(DefaultConfig())
	rs := bigRoom(b, 100)
	req := Request{From: "sip:newcomer@example.com", RURI: "sip:chat-1@example.com", Body: "#join", CallID: "abc@h"}
	b.ReportAllocs()
	for b.Loop() {
		in, err := e.Prepare(req)
		if err != nil {
			b.Fatal(err)
		}
		if res := e.Handle(rs, in); len(res.Notices) != 101 {
			b.Fatalf("%d notices", len(res.Notices))
		}
	}
}

func BenchmarkParseCommand(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if c, ok := ParseCommand("#invite sip:bob@example.com chat-1", '#'); !ok || len(c.Params) != 2 {
			b.Fatal(c)
		}
	}
}
