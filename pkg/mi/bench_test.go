package mi

import (
	"context"
	"fmt"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// bigRooms returns n rooms of three members each.
func bigRooms(b *testing.B, n int) *imc.Rooms {
	rs := imc.NewRooms()
	for i := range n {
		rs.Put(room(b, fmt.Sprintf("sip:room-%06d@conf.example.com", i),
			fmt.Sprintf("sip:owner-%d@example.com", i), "sip:bob@example.com", "sip:carol@example.com"))
	}
	return rs
}

// BenchmarkListRooms100k is imc_list_rooms over 100,000 rooms: the whole
// request, from the raw request to the encoded reply.
func BenchmarkListRooms100k(b *testing.B) {
	s := newServer(b, bigRooms(b, 100_000), nil)
	req := []byte(`{"jsonrpc": "2.0", "id": "4306", "method": "imc_list_rooms", "params": {}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if reply := s.Handle(context.Background(), req); len(reply) < 100_000 {
			b.Fatalf("reply %.100s", reply)
		}
	}
}

// BenchmarkListMembers is imc_list_members of one room among 100,000.
func BenchmarkListMembers(b *testing.B) {
	s := newServer(b, bigRooms(b, 100_000), nil)
	req := []byte(`{"jsonrpc": "2.0", "id": "18140", "method": "imc_list_members", "params": ["sip:room-004242@conf.example.com"]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Handle(context.Background(), req)
	}
}
