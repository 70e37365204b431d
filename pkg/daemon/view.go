package daemon

import "github.com/imcd-sip/imcd/pkg/imc"

// shardView is what the engine sees from inside one shard: the shard's own
// rooms without locking (its goroutine is their only writer) and every other
// shard's rooms under that shard's read lock. Only #rooms looks beyond the
// request's own room.
type shardView struct {
	d    *Daemon
	self *shard
}

func (v shardView) Room(key string) *imc.Room {
	s := v.d.shardFor(key)
	if s == v.self {
		return s.rooms.Room(key)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rooms.Room(key)
}

func (v shardView) EachRoom(fn func(*imc.Room) bool) {
	for _, s := range v.d.shards {
		if s == v.self {
			cont := true
			s.rooms.EachRoom(func(r *imc.Room) bool { cont = fn(r); return cont })
			if !cont {
				return
			}
			continue
		}
		if !eachLocked(s, fn) {
			return
		}
	}
}

// globalView is the MI's view: every shard under its read lock, held only
// while copying room pointers so that listing 100k rooms never stalls a
// shard for longer than a map walk. Rooms are immutable, so the pointers are
// a consistent snapshot of each room.
type globalView struct{ d *Daemon }

func (v globalView) Room(key string) *imc.Room {
	s := v.d.shardFor(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rooms.Room(key)
}

func (v globalView) EachRoom(fn func(*imc.Room) bool) {
	for _, s := range v.d.shards {
		if !eachLocked(s, fn) {
			return
		}
	}
}

// eachLocked copies s's room pointers under its read lock, then calls fn
// without holding it.
func eachLocked(s *shard, fn func(*imc.Room) bool) bool {
	s.mu.RLock()
	rooms := make([]*imc.Room, 0, s.rooms.Len())
	s.rooms.EachRoom(func(r *imc.Room) bool { rooms = append(rooms, r); return true })
	s.mu.RUnlock()
	for _, r := range rooms {
		if !fn(r) {
			return false
		}
	}
	return true
}

// counts sums rooms and members over all shards, for the metrics gauges.
func (d *Daemon) counts() (rooms, members int) {
	for _, s := range d.shards {
		s.mu.RLock()
		r, m := s.rooms.Summary()
		s.mu.RUnlock()
		rooms += r
		members += m
	}
	return rooms, members
}
