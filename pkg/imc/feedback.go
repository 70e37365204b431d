package imc

import (
	"strings"
	"time"
)

// InvitationFailed: delivery of inv's invitation ended with a failure SIP
// status (e.g. "404 Not Found", "408 Request Timeout"). If the invitee is
// still a pending member of the room, the Result removes them and tells the
// inviter that delivery failed with that status and the invitation was
// withdrawn. Otherwise (accepted meanwhile, removed, room gone) it is empty.
// Command is "invitation-failed" either way.
func (e *Engine) InvitationFailed(v View, inv Invitation, status string) Result {
	res := Result{Command: "invitation-failed", Outcome: OK}
	r, m, ok := pending(v, inv)
	if !ok {
		return res
	}
	res.Changes = []Change{{Op: OpRemoveMember, Room: r.URI, Member: m.URI}}
	if status == "" {
		status = "no status"
	}
	res.Notices = r.toInviter(inv, txtInviteFailed(m.URI, status))
	return res
}

// Delivery feedback on an invitation its invitee cannot get now (the
// inviter is told the truth, issue 22): delivery keeps it for them while
// they are unreachable (InvitationWaiting), then it reaches them
// (InvitationDelivered) or, kept too long, is withdrawn
// (InvitationExpired). Each tells the inviter, from the room, only while
// the invitation still stands: the invitee pending (or, once delivered,
// still in the room). None changes anything but InvitationExpired.

// InvitationWaiting: inv's invitation could not be delivered now and waits
// for the invitee, for at most wait. status is the answer that showed them
// unreachable ("480 Temporarily Unavailable"), "" when they were known to
// be. Command "invitation-waiting"; no changes.
func (e *Engine) InvitationWaiting(v View, inv Invitation, status string, wait time.Duration) Result {
	res := Result{Command: "invitation-waiting", Outcome: OK}
	if r, m, ok := pending(v, inv); ok {
		res.Notices = r.toInviter(inv, txtInviteWaiting(m.URI, status, wait))
	}
	return res
}

// InvitationDelivered: inv's invitation, which waited (InvitationWaiting),
// reached the invitee after waited. Command "invitation-delivered"; no
// changes.
func (e *Engine) InvitationDelivered(v View, inv Invitation, waited time.Duration) Result {
	res := Result{Command: "invitation-delivered", Outcome: OK}
	r := v.Room(inv.Room.Key())
	if r == nil {
		return res
	}
	if m, ok := r.Member(inv.Invitee); ok {
		res.Notices = r.toInviter(inv, txtInviteDelivered(m.URI, waited))
	}
	return res
}

// InvitationExpired: inv's invitation waited for waited and the invitee
// never came back (delivery dropped it). Like InvitationFailed, the
// Result withdraws it and tells the inviter why. Command
// "invitation-failed".
func (e *Engine) InvitationExpired(v View, inv Invitation, waited time.Duration) Result {
	res := Result{Command: "invitation-failed", Outcome: OK}
	if r, m, ok := pending(v, inv); ok {
		res.Changes = []Change{{Op: OpRemoveMember, Room: r.URI, Member: m.URI}}
		res.Notices = r.toInviter(inv, txtInviteExpired(m.URI, waited))
	}
	return res
}

// pending returns inv's room and invitee while the invitee is still a
// pending member of it.
func pending(v View, inv Invitation) (*Room, Member, bool) {
	r := v.Room(inv.Room.Key())
	if r == nil {
		return nil, Member{}, false
	}
	m, ok := r.Member(inv.Invitee)
	return r, m, ok && m.Invited()
}

// toInviter is the notice from r to inv's inviter saying body; none
// without a valid inviter (an invitation made by an operator).
func (r *Room) toInviter(inv Invitation, body string) []Notice {
	if inv.Inviter.check() != "" {
		return nil
	}
	return []Notice{{From: r.URI, To: inv.Inviter, Body: body, ContentType: textPlain}}
}

// Unavailable is the reply when the changes of in could not be committed
// (database down): one notice to the sender saying the room service cannot
// save changes right now and to try again later; no changes; Outcome
// Refused; Command is the command's name. It comes from the room the
// request concerns, else from the URI it was sent to.
func (e *Engine) Unavailable(in Input) Result { return notSaved(in, txtUnavailable) }

// InDoubt is the reply when the database stopped answering while the
// changes of in were being committed and could not be asked afterwards
// whether they landed: the sender is told the truth, that it is unknown,
// and how to find out. Otherwise as Unavailable. (With the start
// character configured, "#list" is written with it.)
func (e *Engine) InDoubt(in Input) Result {
	return notSaved(in, strings.ReplaceAll(txtInDoubt, "#", e.sc))
}

// Conflict is the reply when the database refused the changes of in because
// they contradict what it holds (a row imcd does not know of, such as one it
// skipped at load): retrying will not help, so the sender is told that, and
// the operator is expected to look at the log. Otherwise as Unavailable.
func (e *Engine) Conflict(in Input) Result { return notSaved(in, txtConflict) }

func notSaved(in Input, body string) Result {
	from := in.room
	if from.IsZero() {
		from = in.RURI
	}
	return Result{
		Command: in.Command(),
		Outcome: Refused,
		Notices: []Notice{{From: from, To: in.From, Body: body, ContentType: textPlain, InReplyTo: in.replyID}},
	}
}

// Busy is the reply when the notices of in's Result could not be sent
// because delivery is saturated (the room, or imcd as a whole, has too
// much waiting for OpenSIPS). applied says whether in's changes were
// committed (the command took effect, only its notices were lost). A chat
// line is "not sent: send it again"; a command that took effect says so; a
// command without changes could not be answered. The reply comes from the
// room, else from the URI the MESSAGE was sent to; Outcome Refused.
func (e *Engine) Busy(in Input, applied bool) Result {
	from := in.room
	if from.IsZero() {
		from = in.RURI
	}
	var body string
	switch cmd := in.Command(); {
	case cmd == "chat":
		body = txtBusy(from)
	case applied:
		body = txtBusyApplied(e.sc, cmd, from)
	default:
		body = txtBusyCommand(e.sc, cmd)
	}
	return Result{Command: in.Command(), Outcome: Refused,
		Notices: []Notice{{From: from, To: in.From, Body: body, ContentType: textPlain, InReplyTo: in.replyID}}}
}

// Missed is the notice telling member that n notices of room were dropped
// while they could not be reached (they were kept for them, then the
// bounded queue overflowed or they grew too old). It is sent from the room
// when the member is reachable again, before what was kept.
func (e *Engine) Missed(room, member URI, n int) Notice {
	return Notice{From: room, To: member, Body: txtMissed(n), ContentType: textPlain}
}
