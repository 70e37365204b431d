package imc

import (
	"maps"
	"slices"
	"strings"
)

// MaxReasonLen is the longest reason a #remove or #ban may give, in bytes:
// it is repeated in the notices to the room and kept with the ban.
const MaxReasonLen = 255

// Ban keeps a user out of a room until an unban.
type Ban struct {
	// User is the banned address, as the ban gave it.
	User URI
	// Reason is why, as given; "" when none was.
	Reason string
	// By is who banned the user; zero for an operator (the MI).
	By URI
}

// Moderation is a room's moderation state: whether only the owner, admins
// and members with voice may chat, who has voice, and who is banned. It is
// kept beside the standard tables (whose flag bits the native module reads)
// and never in them.
type Moderation struct {
	// Moderated: only the owner, admins and Voiced members may chat.
	Moderated bool
	// Voiced are members who may chat in a moderated room, ordered by
	// identity.
	Voiced []URI
	// Bans are the users kept out of the room, ordered by identity.
	Bans []Ban
}

// IsZero reports whether m holds nothing: an unmoderated room without
// voices or bans.
func (m Moderation) IsZero() bool { return !m.Moderated && len(m.Voiced) == 0 && len(m.Bans) == 0 }

// moderation is a Room's moderation state. Like the Room it is immutable:
// a change builds a new one (with), so a *Room handed out keeps its own.
type moderation struct {
	moderated bool
	voiced    map[string]URI // member key -> the member's URI
	bans      map[string]Ban // user key -> the ban
}

// with returns a copy of m (nil: an empty one) changed by fn, or nil when
// the result holds nothing, so that a room without moderation costs one nil
// pointer.
func (m *moderation) with(fn func(*moderation)) *moderation {
	c := &moderation{}
	if m != nil {
		c.moderated = m.moderated
		c.voiced = maps.Clone(m.voiced)
		c.bans = maps.Clone(m.bans)
	}
	fn(c)
	if !c.moderated && len(c.voiced) == 0 && len(c.bans) == 0 {
		return nil
	}
	return c
}

// Moderated reports whether only the owner, admins and members with voice
// may chat in the room.
func (r *Room) Moderated() bool { return r.mod != nil && r.mod.moderated }

// Voiced reports whether u was given voice in the room.
func (r *Room) Voiced(u URI) bool {
	if r.mod == nil || len(r.mod.voiced) == 0 {
		return false
	}
	// On the chat path of moderated rooms: the key goes into a stack
	// buffer, as in Room.find.
	var buf [KeyBufLen]byte
	_, ok := r.mod.voiced[string(u.AppendKey(buf[:0]))]
	return ok
}

// Banned returns the ban that keeps u out of the room, if there is one.
func (r *Room) Banned(u URI) (Ban, bool) {
	if r.mod == nil || len(r.mod.bans) == 0 {
		return Ban{}, false
	}
	var buf [KeyBufLen]byte
	b, ok := r.mod.bans[string(u.AppendKey(buf[:0]))]
	return b, ok
}

// MaySpeak reports whether member m may chat: in a moderated room only the
// owner, admins and members with voice may.
func (r *Room) MaySpeak(m Member) bool {
	return !r.Moderated() || m.Owner() || m.Admin() || r.Voiced(m.URI)
}

// Moderation returns the room's moderation state; its slices are the
// caller's.
func (r *Room) Moderation() Moderation {
	if r.mod == nil {
		return Moderation{}
	}
	m := Moderation{Moderated: r.mod.moderated}
	for _, k := range slices.Sorted(maps.Keys(r.mod.voiced)) {
		m.Voiced = append(m.Voiced, r.mod.voiced[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.mod.bans)) {
		m.Bans = append(m.Bans, r.mod.bans[k])
	}
	return m
}

// SameModeration reports whether r and o hold the same moderation state as
// the store keeps it: the mode, who has voice, and who is banned by whom
// and why (identities compared as identities). The daemon uses it to tell
// whether a commit in doubt landed.
func (r *Room) SameModeration(o *Room) bool {
	a, b := r.mod, o.mod
	if a == nil || b == nil {
		return a == b
	}
	if a.moderated != b.moderated || len(a.voiced) != len(b.voiced) || len(a.bans) != len(b.bans) {
		return false
	}
	for k := range a.voiced {
		if _, ok := b.voiced[k]; !ok {
			return false
		}
	}
	for k, x := range a.bans {
		y, ok := b.bans[k]
		if !ok || x.Reason != y.Reason || !x.By.Equal(y.By) {
			return false
		}
	}
	return true
}

// WithModeration returns a copy of r with moderation state m, as the store
// reads it beside the standard tables. Voices of users who are not members
// are dropped: voice belongs to a member and ends when they leave.
func (r *Room) WithModeration(m Moderation) *Room {
	c := r.clone()
	c.mod = (*moderation)(nil).with(func(s *moderation) {
		s.moderated = m.Moderated
		for _, u := range m.Voiced {
			if i := r.find(u); i >= 0 {
				s.voice(r.members[i].URI)
			}
		}
		for _, b := range m.Bans {
			s.ban(b)
		}
	})
	return c
}

func (m *moderation) voice(u URI) {
	if m.voiced == nil {
		m.voiced = make(map[string]URI, 1)
	}
	m.voiced[u.Key()] = u
}

func (m *moderation) ban(b Ban) {
	if m.bans == nil {
		m.bans = make(map[string]Ban, 1)
	}
	m.bans[b.User.Key()] = b
}

// applyModeration applies a moderation change to r, a copy being built by
// Rooms.Apply; other changes leave it as it is.
func (r *Room) applyModeration(c Change) {
	var fn func(*moderation)
	switch c.Op {
	case OpModerate, OpUnmoderate:
		fn = func(m *moderation) { m.moderated = c.Op == OpModerate }
	case OpVoice:
		fn = func(m *moderation) { m.voice(c.Member) }
	case OpDevoice:
		fn = func(m *moderation) { delete(m.voiced, c.Member.Key()) }
	case OpBan:
		fn = func(m *moderation) { m.ban(Ban{User: c.Member, Reason: c.Reason, By: c.By}) }
	case OpUnban:
		fn = func(m *moderation) { delete(m.bans, c.Member.Key()) }
	default:
		return
	}
	r.mod = r.mod.with(fn)
}

// dropVoice forgets the voice of a member who left (or was removed).
func (r *Room) dropVoice(key string) {
	if r.mod != nil && len(r.mod.voiced) > 0 {
		if _, ok := r.mod.voiced[key]; ok {
			r.mod = r.mod.with(func(m *moderation) { delete(m.voiced, key) })
		}
	}
}

// withReason appends the reason of a removal or ban to a notice, when one
// was given.
func withReason(body, reason string) string {
	if reason == "" {
		return body
	}
	return body + " (reason: " + reason + ")"
}

// reasonText is what follows the first skip words after the command name
// on the first line of body, blanks trimmed: the reason of a #remove or
// #ban, kept as typed.
func reasonText(body string, skip int) string {
	line := body
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	// The command name is word 0.
	for w := 0; w <= skip; w++ {
		line = strings.TrimLeft(line, " \t")
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return ""
		}
		line = line[i:]
	}
	return strings.Trim(line, " \t")
}
