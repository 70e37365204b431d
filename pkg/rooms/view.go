package rooms

import "github.com/imcd-sip/imcd/pkg/imc"

// shards is a runtime's shards, in the order of their ids.
type shards []*shard

// of maps a room key to its shard with FNV-1a: cheap, allocation-free, and
// stable for the life of the process.
func (ss shards) of(key string) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return ss[h&uint32(len(ss)-1)]
}

// shardView is what the engine sees from inside one shard: the shard's own
// rooms without locking (its goroutine is their only writer) and every other
// shard's rooms under that shard's read lock. Only #rooms looks beyond the
// request's own room.
type shardView struct {
	all  shards
	self *shard
}

func (v shardView) Room(key string) *imc.Room {
	s := v.all.of(key)
	if s == v.self {
		return s.rooms.Room(key)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rooms.Room(key)
}

func (v shardView) EachRoom(fn func(*imc.Room) bool) {
	for _, s := range v.all {
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

// globalView is the view from outside the shards (the MI's): every shard
// under its read lock, held only while copying room pointers so that
// listing 100k rooms never stalls a shard for longer than a map walk.
// Rooms are immutable, so the pointers are a consistent snapshot of each
// room.
type globalView struct{ all shards }

func (v globalView) Room(key string) *imc.Room {
	s := v.all.of(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rooms.Room(key)
}

func (v globalView) EachRoom(fn func(*imc.Room) bool) {
	for _, s := range v.all {
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
func (ss shards) counts() (rooms, members int) {
	for _, s := range ss {
		s.mu.RLock()
		r, m := s.rooms.Summary()
		s.mu.RUnlock()
		rooms += r
		members += m
	}
	return rooms, members
}
