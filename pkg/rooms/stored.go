package rooms

import "github.com/imcd-sip/imcd/pkg/imc"

// Memory following the database: the rooms a change set touches, whether
// what the database holds is what memory would be, and putting the
// database's rooms in memory.

// affected lists the rooms a change set touches.
func affected(changes []imc.Change) []imc.URI {
	var rooms []imc.URI
	seen := make(map[string]bool, 1)
	for _, c := range changes {
		if k := c.Room.Key(); !seen[k] {
			seen[k] = true
			rooms = append(rooms, c.Room)
		}
	}
	return rooms
}

// matches reports whether the database's rooms equal memory with changes
// applied: whether a commit in doubt landed.
func (s *shard) matches(changes []imc.Change, truth map[string]*imc.Room) bool {
	want := imc.NewRooms()
	for k := range truth {
		if r := s.rooms.Room(k); r != nil {
			want.Put(r)
		}
	}
	want.Apply(changes)
	for k, r := range truth {
		if !sameRoom(want.Room(k), r) {
			return false
		}
	}
	return true
}

// replace puts the database's rooms in memory (nil: the room is gone):
// being what the database holds, they are no longer doubtful.
func (s *shard) replace(truth map[string]*imc.Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range truth {
		delete(s.doubtful, k)
		if r == nil {
			s.rooms.Delete(k)
			continue
		}
		s.putStored(k, r)
	}
}

// putStored puts room r (of key k) as the database holds it, with the
// topic memory had: the imc tables hold no topic. s.mu is held.
func (s *shard) putStored(k string, r *imc.Room) {
	old := s.rooms.Room(k)
	s.rooms.Put(r)
	if old != nil && old.Topic().Text != "" {
		s.rooms.SetTopic(k, old.Topic())
	}
}

// sameRoom compares two rooms as the database stores them: URI, flag, the
// members with their flags (order aside), and the moderation.
func sameRoom(a, b *imc.Room) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Key() != b.Key() || a.Flags != b.Flags || len(a.Members()) != len(b.Members()) || !a.SameModeration(b) {
		return false
	}
	for _, m := range a.Members() {
		o, ok := b.Member(m.URI)
		if !ok || o.Flags&imc.MemberStored != m.Flags&imc.MemberStored {
			return false
		}
	}
	return true
}
