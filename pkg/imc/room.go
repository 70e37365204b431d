package imc

// RoomFlags is imc_rooms.flag; the bit values are the native module's.
type RoomFlags uint32

// Room flag bits.
const (
	// RoomPrivate: members join only by invitation.
	RoomPrivate RoomFlags = 1
)

// MemberFlags is imc_members.flag; the bit values are the native module's.
type MemberFlags uint32

// Member flag bits. Bits 3 and 4 (8 and 16) are the native module's
// transient marks (deleted, ...) and are never stored by imcd.
const (
	// MemberOwner marks the room's owner: one per room (a room loaded from
	// a native database may have none).
	MemberOwner MemberFlags = 1
	// MemberAdmin marks an administrator, who may invite, add and remove.
	MemberAdmin MemberFlags = 2
	// MemberInvited marks a pending invitee, who has not accepted yet.
	MemberInvited MemberFlags = 4

	// MemberStored is every bit imcd keeps; others are dropped on load.
	MemberStored = MemberOwner | MemberAdmin | MemberInvited
)

// Member is one row of imc_members: an address and its role in one room.
type Member struct {
	URI   URI
	Flags MemberFlags
}

// Owner reports whether m owns the room.
func (m Member) Owner() bool { return m.Flags&MemberOwner != 0 }

// Admin reports whether m is an administrator (and not the owner).
func (m Member) Admin() bool { return m.Flags&MemberAdmin != 0 && !m.Owner() }

// Invited reports whether m is a pending invitee who has not accepted yet.
func (m Member) Invited() bool { return m.Flags&MemberInvited != 0 }

// Active reports whether m takes part in the room (is not a pending invitee).
func (m Member) Active() bool { return !m.Invited() }

// Room is a conference room and its members. A *Room is immutable: never
// modify what Members returns; build a changed room through Rooms.Apply.
type Room struct {
	URI   URI
	Flags RoomFlags

	members []Member
	index   map[string]int // Member.URI.Key() -> position in members
	topic   Topic
	mod     *moderation // nil: not moderated, no voices, no bans
}

// NewRoom builds a room. Members keep the given order except that an owner is
// moved to the front. A later duplicate of an identity replaces the earlier one.
func NewRoom(uri URI, flags RoomFlags, members []Member) *Room {
	r := &Room{URI: uri, Flags: flags, members: make([]Member, 0, len(members)), index: make(map[string]int, len(members))}
	for _, m := range members {
		r.put(m)
	}
	return r
}

func (r *Room) put(m Member) {
	k := m.URI.Key()
	if i, ok := r.index[k]; ok {
		r.members[i] = m
	} else {
		r.index[k] = len(r.members)
		r.members = append(r.members, m)
	}
	if m.Owner() {
		r.moveToFront(r.index[k])
	}
}

func (r *Room) moveToFront(i int) {
	if i == 0 {
		return
	}
	m := r.members[i]
	copy(r.members[1:i+1], r.members[:i])
	r.members[0] = m
	for j := 0; j <= i; j++ {
		r.index[r.members[j].URI.Key()] = j
	}
}

func (r *Room) remove(key string) {
	i, ok := r.index[key]
	if !ok {
		return
	}
	delete(r.index, key)
	r.members = append(r.members[:i], r.members[i+1:]...)
	for j := i; j < len(r.members); j++ {
		r.index[r.members[j].URI.Key()] = j
	}
}

func (r *Room) clone() *Room {
	c := &Room{URI: r.URI, Flags: r.Flags, topic: r.topic, mod: r.mod, members: make([]Member, len(r.members), len(r.members)+1), index: make(map[string]int, len(r.index)+1)}
	copy(c.members, r.members)
	for k, v := range r.index {
		c.index[k] = v
	}
	return c
}

// Topic returns the room's topic; the zero Topic when none is set.
func (r *Room) Topic() Topic { return r.topic }

// Key returns the room's identity, "name@domain" in lower case.
func (r *Room) Key() string { return r.URI.Key() }

// Private reports whether the room admits members only by invitation.
func (r *Room) Private() bool { return r.Flags&RoomPrivate != 0 }

// Members returns every member, owner first, then in the order they were
// added; pending invitees included. The slice must not be modified.
func (r *Room) Members() []Member { return r.members }

// Member returns the member with the identity of u.
func (r *Room) Member(u URI) (Member, bool) {
	i := r.find(u)
	if i < 0 {
		return Member{}, false
	}
	return r.members[i], true
}

// find returns the position of the member with the identity of u, or -1.
// It runs for every chat line, so the key goes into a stack buffer instead
// of being allocated (m[string(b)] does not allocate).
func (r *Room) find(u URI) int {
	var buf [KeyBufLen]byte
	if i, ok := r.index[string(u.AppendKey(buf[:0]))]; ok {
		return i
	}
	return -1
}

// Owner returns the room's owner. A room loaded from a database written by
// the native module may have none.
func (r *Room) Owner() (Member, bool) {
	if len(r.members) > 0 && r.members[0].Owner() {
		return r.members[0], true
	}
	return Member{}, false
}

// ActiveCount returns the number of members who are not pending invitees.
func (r *Room) ActiveCount() int {
	n := 0
	for _, m := range r.members {
		if m.Active() {
			n++
		}
	}
	return n
}

// View is read access to the rooms a request may look at. *Rooms implements
// it; the daemon supplies one that also sees other shards' rooms.
type View interface {
	// Room returns the room with the given key (URI.Key()), or nil.
	Room(key string) *Room
	// EachRoom calls fn for every room until fn returns false.
	EachRoom(fn func(*Room) bool)
}

// Rooms is a set of rooms keyed by identity. It is not safe for concurrent
// use; its owner serialises access (in imcd: one shard goroutine).
type Rooms struct {
	m map[string]*Room
}

// NewRooms returns an empty set.
func NewRooms() *Rooms { return &Rooms{m: make(map[string]*Room)} }

// Room returns the room with the given key, or nil.
func (rs *Rooms) Room(key string) *Room { return rs.m[key] }

// EachRoom calls fn for every room until fn returns false.
func (rs *Rooms) EachRoom(fn func(*Room) bool) {
	for _, r := range rs.m {
		if !fn(r) {
			return
		}
	}
}

// Len returns the number of rooms.
func (rs *Rooms) Len() int { return len(rs.m) }

// Put adds or replaces a room.
func (rs *Rooms) Put(r *Room) { rs.m[r.Key()] = r }

// SetTopic replaces the topic of the room with the given key by a copy of
// the room with t (rooms are immutable); no room, no change.
func (rs *Rooms) SetTopic(key string, t Topic) {
	if r := rs.m[key]; r != nil {
		c := r.clone()
		c.topic = t
		rs.m[key] = c
	}
}

// Delete removes the room with the given key, if there is one.
func (rs *Rooms) Delete(key string) { delete(rs.m, key) }

// Apply applies changes in order. Each touched room is replaced by a new
// *Room, so a *Room obtained earlier keeps its contents. Changes that do not
// fit the current state (a member of a missing room, a duplicate room) are
// applied as far as they make sense: the store has already committed them,
// and memory must follow the database.
func (rs *Rooms) Apply(changes []Change) {
	touched := make(map[string]*Room, 1)
	for _, c := range changes {
		key := c.Room.Key()
		switch c.Op {
		case OpCreateRoom:
			r := NewRoom(c.Room, c.RoomFlags, nil)
			touched[key] = r
			rs.m[key] = r
			continue
		case OpDeleteRoom:
			delete(touched, key)
			delete(rs.m, key)
			continue
		}
		r := touched[key]
		if r == nil {
			old := rs.m[key]
			if old == nil {
				continue
			}
			r = old.clone()
			touched[key] = r
			rs.m[key] = r
		}
		switch c.Op {
		case OpAddMember, OpUpdateMember:
			r.put(Member{URI: c.Member, Flags: c.MemberFlags & MemberStored})
		case OpRemoveMember:
			r.remove(c.Member.Key())
			r.dropVoice(c.Member.Key())
		case OpUpdateRoom:
			r.Flags = c.RoomFlags
		default:
			r.applyModeration(c)
		}
	}
}

// Summary counts rooms and members, for metrics.
func (rs *Rooms) Summary() (rooms, members int) {
	for _, r := range rs.m {
		members += len(r.members)
	}
	return len(rs.m), members
}
