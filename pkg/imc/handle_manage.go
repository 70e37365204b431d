package imc

// invite adds a pending member and sends the invitation; the owner and
// admins may invite, in public rooms too.
func (c *call) invite() Result {
	target, r, sender, msg := c.managed()
	if msg != "" {
		return c.refuse(msg)
	}
	if msg := c.e.memberRefusal(target, r.URI, "invited"); msg != "" {
		return c.refuse(msg)
	}
	if msg := c.bannedRefusal(r, target); msg != "" {
		return c.refuse(msg)
	}
	if m, ok := r.Member(target); ok {
		if m.Invited() {
			return c.refuse(txtIsInvited(m.URI, r.URI))
		}
		return c.refuse(txtIsMember(m.URI, r.URI))
	}
	if c.e.full(r) {
		return c.refuse(txtRoomFull(r.URI, c.e.cfg.MaxMembers))
	}
	if roomTooLong(r.URI) {
		return c.refuse(txtRoomTooLong(r.URI))
	}
	if userTooLong(target) {
		return c.refuse(txtUserTooLong(target))
	}
	changes := []Change{{Op: OpAddMember, Room: r.URI, Member: target, MemberFlags: MemberInvited}}
	inv := &Invitation{Room: r.URI, Invitee: target, Inviter: sender.URI}
	a := c.answer()
	invitation := a.to(r.URI, target, txtInvitation(c.e.sc, c.in.From, r.URI))
	invitation.Invitation = inv
	return c.ok(changes, []Notice{invitation, c.reply(r.URI, txtInviteSent(target))})
}

// add makes a user an active member directly (a pending invitee too); the
// owner and admins may add.
func (c *call) add() Result {
	target, r, _, msg := c.managed()
	if msg != "" {
		return c.refuse(msg)
	}
	if msg := c.e.memberRefusal(target, r.URI, "added"); msg != "" {
		return c.refuse(msg)
	}
	if msg := c.bannedRefusal(r, target); msg != "" {
		return c.refuse(msg)
	}
	m, ok := r.Member(target)
	if ok && m.Active() {
		return c.refuse(txtIsMember(m.URI, r.URI))
	}
	var change Change
	if ok {
		change = Change{Op: OpUpdateMember, Room: r.URI, Member: m.URI, MemberFlags: m.Flags &^ MemberInvited}
		target = m.URI
	} else {
		if c.e.full(r) {
			return c.refuse(txtRoomFull(r.URI, c.e.cfg.MaxMembers))
		}
		if roomTooLong(r.URI) {
			return c.refuse(txtRoomTooLong(r.URI))
		}
		if userTooLong(target) {
			return c.refuse(txtUserTooLong(target))
		}
		change = Change{Op: OpAddMember, Room: r.URI, Member: target}
	}
	a := c.answer()
	ns := joinedNotices(a, r, target, ok)
	ns = append(ns, a.to(r.URI, target, txtAddedYou(c.in.From)))
	return c.joinExtras(c.ok([]Change{change}, ns), r, target)
}

// joinedNotices tells the room and u that u has joined. pending says u is
// already in r (as an invitee) rather than new to it.
func joinedNotices(a answer, r *Room, u URI, pending bool) []Notice {
	body := txtJoined(u)
	ns := a.tell(make([]Notice, 0, len(r.members)+2), r, body, func(m Member) bool {
		return m.Active() || pending && m.URI.Equal(u)
	})
	if !pending {
		ns = append(ns, a.to(r.URI, u, body))
	}
	return ns
}

// remove takes a member out of the room, saying why when a reason is
// given: the owner removes anyone but himself, an admin only plain members
// and pending invitees.
func (c *call) remove() Result {
	target, r, sender, msg := c.sanctioned(txtRemoveSelf(c.e.sc))
	if msg != "" {
		return c.refuse(msg)
	}
	m, ok := r.Member(target)
	if !ok {
		return c.refuse(txtIsNotMember(target, r.URI))
	}
	if msg := outrankRefusal(r, sender, m, "remove", "removed"); msg != "" {
		return c.refuse(msg)
	}
	return c.ok(removal(c.answer(), r, m, c.in.reason))
}

// sanctioned runs the checks shared by #remove and #ban: those of managed,
// that the sender does not name himself (self says so), and the length of
// the reason.
func (c *call) sanctioned(self string) (target URI, r *Room, sender Member, msg string) {
	if target, r, sender, msg = c.managed(); msg != "" {
		return
	}
	switch {
	case target.Equal(sender.URI):
		msg = self
	case len(c.in.reason) > MaxReasonLen:
		msg = txtReasonTooLong()
	}
	return
}

// outrankRefusal says why sender may not verb ("remove", "ban"; done:
// "removed", "banned") member m of r, or "": nobody may the owner, and only
// the owner an admin.
func outrankRefusal(r *Room, sender, m Member, verb, done string) string {
	switch {
	case m.Owner():
		return txtOwnerExempt(done)
	case m.Admin() && !sender.Owner():
		return txtNeedOwnerForAdmin(r.URI, verb)
	}
	return ""
}

// removal is the change and the notices for taking m out of r, with the
// reason when there is one: m is told, and for an active member so is the
// rest of the room; a withdrawn invitation concerns only the invitee and
// whoever withdrew it.
func removal(a answer, r *Room, m Member, reason string) ([]Change, []Notice) {
	changes := []Change{{Op: OpRemoveMember, Room: r.URI, Member: m.URI}}
	if m.Invited() {
		ns := []Notice{a.to(r.URI, m.URI, withReason(txtInviteWithdrawn(r.URI), reason))}
		if !a.sender.IsZero() {
			ns = append(ns, a.to(r.URI, a.sender, withReason(txtWithdrawn(m.URI), reason)))
		}
		return changes, ns
	}
	ns := make([]Notice, 1, len(r.members))
	ns[0] = a.to(r.URI, m.URI, withReason(txtRemovedYou, reason))
	ns = a.tell(ns, r, withReason(txtRemoved(m.URI), reason), func(x Member) bool {
		return x.Active() && !x.URI.Equal(m.URI)
	})
	return changes, ns
}

// modify changes a member's role. Only the owner may, because every change
// of role involves the admin or owner role; granting owner hands the room
// over and the old owner becomes an admin. Nobody demotes the owner.
func (c *call) modify() Result {
	if msg := c.syntax(); msg != "" {
		return c.refuse(msg)
	}
	target, msg := c.userArg(0)
	if msg != "" {
		return c.refuse(msg)
	}
	role, ok := ParseRole(c.in.cmd.Params[1])
	if !ok {
		return c.refuse(txtBadRole(c.in.cmd.Params[1]))
	}
	r := c.lookup()
	if r == nil {
		return c.refuse(txtNoSuchRoom(c.in.room))
	}
	sender, msg := c.activeSender(txtPending(c.e.sc, r.URI))
	if msg != "" {
		return c.refuse(msg)
	}
	if !sender.Owner() {
		return c.refuse(txtNeedOwner(c.e.sc, c.in.cmd.Name, r.URI))
	}
	m, ok := r.Member(target)
	if msg := roleRefusal(c.e.sc, r, m, ok, target, role); msg != "" {
		return c.refuse(msg)
	}
	return c.ok(roleChange(c.answer(), r, m, role))
}

// roleRefusal says why m (found says whether target is in r at all) cannot
// be given role, or "".
func roleRefusal(sc string, r *Room, m Member, found bool, target URI, role Role) string {
	switch {
	case !found:
		return txtIsNotMember(target, r.URI)
	case m.Invited():
		return txtIsPending(m.URI, r.URI)
	case m.Role() == role:
		return txtIsRole(m.URI, role)
	case m.Owner():
		return txtDemoteOwner(sc)
	}
	return ""
}

// roleChange gives active member m role and tells the room. Granting owner
// demotes the current owner, if any, to admin.
func roleChange(a answer, r *Room, m Member, role Role) ([]Change, []Notice) {
	changes := []Change{{Op: OpUpdateMember, Room: r.URI, Member: m.URI, MemberFlags: m.Flags.withRole(role)}}
	body := txtRole(m.URI, role)
	if old, ok := r.Owner(); ok && role == RoleOwner {
		changes = append(changes, Change{Op: OpUpdateMember, Room: r.URI, Member: old.URI, MemberFlags: old.Flags.withRole(RoleAdmin)})
		body += "\n" + txtRole(old.URI, RoleAdmin)
	}
	return changes, a.tell(nil, r, body, active)
}

// managed runs the checks shared by the commands of the owner and admins
// about a user (#invite, #add, #remove, #ban, #unban, #voice, #devoice):
// syntax, the user argument, the room, and that the sender is its owner or
// an admin.
func (c *call) managed() (target URI, r *Room, sender Member, msg string) {
	if msg = c.syntax(); msg != "" {
		return
	}
	if target, msg = c.userArg(0); msg != "" {
		return
	}
	if r = c.lookup(); r == nil {
		msg = txtNoSuchRoom(c.in.room)
		return
	}
	sender, msg = c.manager()
	return
}
