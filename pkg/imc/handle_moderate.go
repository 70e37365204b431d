package imc

import "strings"

// Moderation: bans, moderated rooms and voice. The owner and admins use
// these commands, with the same rule as #remove: nobody bans the owner, and
// only the owner bans an admin.

// ban removes the user, when they are in the room, and keeps them out
// until #unban. A user who is not in the room can be banned too.
func (c *call) ban() Result {
	target, r, sender, msg := c.sanctioned(txtBanSelf(c.e.sc))
	if msg != "" {
		return c.refuse(msg)
	}
	if b, ok := r.Banned(target); ok {
		return c.refuse(txtIsBanned(b.User, r.URI))
	}
	m, member := r.Member(target)
	if member {
		if msg := outrankRefusal(r, sender, m, "ban", "banned"); msg != "" {
			return c.refuse(msg)
		}
	} else if userTooLong(target) {
		return c.refuse(txtUserTooLong(target))
	}
	if roomTooLong(r.URI) {
		return c.refuse(txtRoomTooLong(r.URI))
	}
	return c.ok(banning(c.answer(), r, target, sender.URI, c.in.reason))
}

// banning is the changes and notices of a ban of u from r by by (zero: an
// operator): a member is removed first and told, in the same change set;
// the room is told, the reason with it.
func banning(a answer, r *Room, u, by URI, reason string) ([]Change, []Notice) {
	var changes []Change
	ns := make([]Notice, 0, len(r.members)+1)
	if m, ok := r.Member(u); ok {
		u = m.URI
		changes = append(changes, Change{Op: OpRemoveMember, Room: r.URI, Member: u})
		ns = append(ns, a.to(r.URI, u, withReason(txtBannedYou, reason)))
	}
	changes = append(changes, Change{Op: OpBan, Room: r.URI, Member: u, Reason: reason, By: by})
	ns = a.tell(ns, r, withReason(txtBanned(u), reason), func(x Member) bool {
		return x.Active() && !x.URI.Equal(u)
	})
	return changes, ns
}

// unban lifts a ban; the room is told.
func (c *call) unban() Result {
	target, r, _, msg := c.managed()
	if msg != "" {
		return c.refuse(msg)
	}
	b, ok := r.Banned(target)
	if !ok {
		return c.refuse(txtNotBanned(target, r.URI))
	}
	return c.ok(unbanning(c.answer(), r, b))
}

func unbanning(a answer, r *Room, b Ban) ([]Change, []Notice) {
	changes := []Change{{Op: OpUnban, Room: r.URI, Member: b.User}}
	return changes, a.tell(nil, r, txtUnbanned(b.User), active)
}

// maxBansListed caps the bans #bans shows, so that a long list costs its
// asker a few MESSAGEs, not hundreds; the operator's imc:bans shows all.
const maxBansListed = 100

// bans lists who is banned, for the owner and admins.
func (c *call) bans() Result {
	r, msg := c.existing()
	if msg != "" {
		return c.refuse(msg)
	}
	if _, msg := c.manager(); msg != "" {
		return c.refuse(msg)
	}
	bans := r.Moderation().Bans
	if len(bans) == 0 {
		return c.ok(nil, []Notice{c.reply(r.URI, txtNoBans(r.URI))})
	}
	shown := min(len(bans), maxBansListed)
	lines := make([]string, 0, shown+2)
	lines = append(lines, txtBansHead(r.URI, len(bans)))
	for _, b := range bans[:shown] {
		lines = append(lines, banLine(b))
	}
	if shown < len(bans) {
		lines = append(lines, txtMore(len(bans)-shown))
	}
	var ns []Notice
	for _, body := range pack(lines, c.e.maxText()) {
		ns = append(ns, c.reply(r.URI, body))
	}
	return c.ok(nil, ns)
}

// pack joins lines with LF into as few bodies as max bytes allow; a line
// longer than max gets a body of its own.
func pack(lines []string, max int) []string {
	var out []string
	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && b.Len()+1+len(l) > max {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// moderate turns the room's moderation on or off; the room is told.
func (c *call) moderate() Result {
	if msg := c.syntax(); msg != "" {
		return c.refuse(msg)
	}
	on, ok := parseOnOff(c.in.cmd.Params[0])
	if !ok {
		return c.refuse(txtBadOption(c.in.cmd.Params[0], c.usage()))
	}
	r := c.lookup()
	if r == nil {
		return c.refuse(txtNoSuchRoom(c.in.room))
	}
	sender, msg := c.manager()
	if msg != "" {
		return c.refuse(msg)
	}
	if r.Moderated() == on {
		return c.refuse(txtModerationIs(r.URI, on))
	}
	return c.ok(moderating(c.answer(), r, on, sender.URI))
}

// moderating is the change and the notice of turning r's moderation on or
// off by by (zero: an operator).
func moderating(a answer, r *Room, on bool, by URI) ([]Change, []Notice) {
	op := OpUnmoderate
	if on {
		op = OpModerate
	}
	return []Change{{Op: op, Room: r.URI}}, a.tell(nil, r, txtModeration(by, on), active)
}

// parseOnOff reads #moderate's argument: on or off, in any case.
func parseOnOff(s string) (on, ok bool) {
	switch {
	case strings.EqualFold(s, "on"):
		return true, true
	case strings.EqualFold(s, "off"):
		return false, true
	}
	return false, false
}

// voice gives an active member voice (give) or takes it away; the room is
// told. The owner and admins always may speak and have no voice to change.
func (c *call) voice(give bool) Result {
	target, r, _, msg := c.managed()
	if msg != "" {
		return c.refuse(msg)
	}
	m, ok := r.Member(target)
	switch {
	case !ok:
		return c.refuse(txtIsNotMember(target, r.URI))
	case m.Invited():
		return c.refuse(txtIsPending(m.URI, r.URI))
	case m.Owner() || m.Admin():
		return c.refuse(txtAlwaysSpeaks(m.URI, m.Role()))
	case r.Voiced(m.URI) == give:
		return c.refuse(txtVoiceIs(m.URI, give))
	}
	op, body := OpDevoice, txtDevoiced(m.URI)
	if give {
		op, body = OpVoice, txtVoiced(m.URI)
	}
	return c.ok([]Change{{Op: op, Room: r.URI, Member: m.URI}}, c.answer().tell(nil, r, body, active))
}

// bannedRefusal says why target may not be invited or added to r, or "".
func (c *call) bannedRefusal(r *Room, target URI) string {
	if b, ok := r.Banned(target); ok {
		return txtBannedUser(c.e.sc, b.User, r.URI)
	}
	return ""
}
