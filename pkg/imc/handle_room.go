package imc

import (
	"sort"
	"strings"
)

// exit: a member leaves. The owner's exit destroys the room, as the native
// module documents.
func (c *call) exit() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	m, msg := c.activeSender(txtPendingExit(c.e.sc, r.URI))
	if msg != "" {
		return c.refuse(msg)
	}
	if m.Owner() {
		return c.ok(destruction(c.answer(), r))
	}
	changes := []Change{{Op: OpRemoveMember, Room: r.URI, Member: m.URI}}
	ns := make([]Notice, 1, len(r.members))
	ns[0] = c.reply(r.URI, txtLeftYou)
	ns = c.answer().tell(ns, r, txtLeft(m.URI), func(x Member) bool {
		return x.Active() && !x.URI.Equal(m.URI)
	})
	return c.ok(changes, ns)
}

// destroy: the owner deletes the room. A room without an owner (loaded from
// a native database) can be destroyed only by an operator.
func (c *call) destroy() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	m, msg := c.activeSender(txtPending(c.e.sc, r.URI))
	if msg != "" {
		return c.refuse(msg)
	}
	if !m.Owner() {
		return c.refuse(txtNeedOwner(c.e.sc, c.in.cmd.Name, r.URI))
	}
	return c.ok(destruction(c.answer(), r))
}

// destruction deletes r (the store deletes its members with it) and tells
// every member, pending invitees included: their invitation is void.
func destruction(a answer, r *Room) ([]Change, []Notice) {
	changes := []Change{{Op: OpDeleteRoom, Room: r.URI}}
	return changes, a.tell(make([]Notice, 0, len(r.members)), r, txtDestroyed, everyone)
}

// list answers the native "Members:" listing: the owner first marked '*',
// then the others newest first as the native module orders them, admins
// marked '~', pending invitees left out.
func (c *call) list() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	if _, msg := c.activeSender(txtPending(c.e.sc, r.URI)); msg != "" {
		return c.refuse(msg)
	}
	return c.ok(nil, []Notice{c.reply(r.URI, memberList(r))})
}

// rooms lists the public rooms of the request URI's domain and every room
// the sender is in or invited to, sorted by address. Another user's private
// room is never shown.
func (c *call) rooms() Result {
	if msg := c.syntax(); msg != "" {
		return c.refuse(msg)
	}
	type entry struct {
		key    string
		r      *Room
		m      Member
		member bool
	}
	var list []entry
	// The closure goes to an interface method and so to the heap: it must
	// not capture c, or every Handle would allocate c.
	from, host := c.in.From, c.in.RURI.Host
	c.v.EachRoom(func(r *Room) bool {
		m, member := r.Member(from)
		if member || !r.Private() && strings.EqualFold(r.URI.Host, host) {
			list = append(list, entry{r.Key(), r, m, member})
		}
		return true
	})
	if len(list) == 0 {
		return c.ok(nil, []Notice{c.reply(c.in.RURI, txtNoRooms)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].key < list[j].key })
	shown := len(list)
	if max := c.e.cfg.MaxRoomsListed; max > 0 && shown > max {
		shown = max
	}
	var b strings.Builder
	b.WriteString(txtRooms)
	for _, e := range list[:shown] {
		b.WriteByte('\n')
		roomLine(&b, e.r, e.m, e.member)
	}
	if shown < len(list) {
		b.WriteString("\n" + txtMore(len(list)-shown))
	}
	return c.ok(nil, []Notice{c.reply(c.in.RURI, b.String())})
}
