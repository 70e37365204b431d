package imc

import "strings"

// create makes a new room owned by the sender. An existing public room is
// joined instead, and a pending invitee of a private one accepts, so that
// #create works as the native "create or join".
func (c *call) create() Result {
	if msg := c.syntax(); msg != "" {
		return c.refuse(msg)
	}
	var flags RoomFlags
	if p := c.in.cmd.Params; len(p) == 2 {
		if !strings.EqualFold(p[1], "private") {
			return c.refuse(txtBadOption(p[1], c.usage()))
		}
		flags = RoomPrivate
	}
	if r := c.lookup(); r != nil {
		return c.joinExisting(r)
	}
	return c.createRoom(flags)
}

// join joins a room, creating it when it is missing and Config.CreateOnJoin
// is set.
func (c *call) join() Result {
	if msg := c.syntax(); msg != "" {
		return c.refuse(msg)
	}
	if r := c.lookup(); r != nil {
		return c.joinExisting(r)
	}
	if !c.e.cfg.CreateOnJoin {
		return c.refuse(txtNoSuchRoom(c.in.room))
	}
	return c.createRoom(0)
}

// createRoom creates c.in.room with the sender as owner.
func (c *call) createRoom(flags RoomFlags) Result {
	room := c.in.room
	if msg := c.e.newRoomRefusal(room, c.in.RURI.Host); msg != "" {
		return c.refuse(msg)
	}
	switch {
	case c.e.reserved(room):
		return c.refuse(txtReserved(room))
	case roomTooLong(room):
		return c.refuse(txtRoomTooLong(room))
	case userTooLong(c.in.From):
		return c.refuse(txtSenderTooLong())
	case c.e.cfg.MaxOwnedRooms > 0 && ownedRooms(c.v, c.in.From, c.e.cfg.MaxOwnedRooms) >= c.e.cfg.MaxOwnedRooms:
		return c.refuse(txtTooManyRooms(c.e.cfg.MaxOwnedRooms))
	}
	changes := []Change{
		{Op: OpCreateRoom, Room: room, RoomFlags: flags},
		{Op: OpAddMember, Room: room, Member: c.in.From, MemberFlags: MemberOwner},
	}
	return c.ok(changes, []Notice{c.reply(room, txtCreated)})
}

// joinExisting makes the sender an active member of r: a pending invitee
// accepts, anyone else joins a public room.
func (c *call) joinExisting(r *Room) Result {
	if b, ok := r.Banned(c.in.From); ok {
		return c.refuse(txtBannedFrom(r.URI, b))
	}
	if m, ok := r.Member(c.in.From); ok {
		if m.Active() {
			return c.refuse(txtAlreadyMember(r.URI))
		}
		return c.acceptInvitation(r, m)
	}
	if r.Private() {
		return c.refuse(txtPrivate(r.URI))
	}
	if c.e.full(r) {
		return c.refuse(txtRoomFull(r.URI, c.e.cfg.MaxMembers))
	}
	if roomTooLong(r.URI) {
		return c.refuse(txtRoomTooLong(r.URI))
	}
	if userTooLong(c.in.From) {
		return c.refuse(txtSenderTooLong())
	}
	joiner := c.in.From
	changes := []Change{{Op: OpAddMember, Room: r.URI, Member: joiner}}
	body := txtJoined(joiner)
	a := c.answer()
	ns := a.tell(make([]Notice, 0, len(r.members)+1), r, body, active)
	ns = append(ns, a.to(r.URI, joiner, body))
	return c.joinExtras(c.ok(changes, ns), r, joiner)
}

// acceptInvitation turns pending invitee m into an active member and tells
// the room, m included.
func (c *call) acceptInvitation(r *Room, m Member) Result {
	changes := []Change{{Op: OpUpdateMember, Room: r.URI, Member: m.URI, MemberFlags: m.Flags &^ MemberInvited}}
	ns := c.answer().tell(nil, r, txtJoined(m.URI), func(x Member) bool {
		return x.Active() || x.URI.Equal(m.URI)
	})
	return c.joinExtras(c.ok(changes, ns), r, m.URI)
}

// accept: a pending invitee joins.
func (c *call) accept() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	if b, ok := r.Banned(c.in.From); ok {
		return c.refuse(txtBannedFrom(r.URI, b))
	}
	m, ok := r.Member(c.in.From)
	switch {
	case !ok:
		return c.refuse(txtNotInvited(r.URI))
	case m.Active():
		return c.refuse(txtAlreadyMember(r.URI))
	}
	return c.acceptInvitation(r, m)
}

// deny: a pending invitee declines. The inviter is not stored, so the owner
// is told instead.
func (c *call) deny() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	m, ok := r.Member(c.in.From)
	switch {
	case !ok:
		return c.refuse(txtNotInvited(r.URI))
	case m.Active():
		return c.refuse(txtAlreadyJoined(c.e.sc, r.URI))
	}
	changes := []Change{{Op: OpRemoveMember, Room: r.URI, Member: m.URI}}
	ns := []Notice{c.reply(r.URI, txtDeclinedYou(r.URI))}
	if owner, ok := r.Owner(); ok {
		ns = append(ns, c.answer().to(r.URI, owner.URI, txtDeclined(m.URI)))
	}
	return c.ok(changes, ns)
}

// ownedRooms counts the rooms u owns, stopping at limit: only #create pays
// for this walk over every room.
func ownedRooms(v View, u URI, limit int) int {
	n := 0
	v.EachRoom(func(r *Room) bool {
		if o, ok := r.Owner(); ok && o.URI.Equal(u) {
			n++
		}
		return n < limit
	})
	return n
}

// full reports whether r may take no new member.
func (e *Engine) full(r *Room) bool {
	return e.cfg.MaxMembers > 0 && len(r.members) >= e.cfg.MaxMembers
}
