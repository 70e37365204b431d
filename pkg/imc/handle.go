package imc

import (
	"errors"
	"strings"
)

// Handle applies the rules for one prepared request against the rooms
// visible in v. It never mutates v; the caller commits res.Changes, then
// applies them to its Rooms (Rooms.Apply), then sends res.Notices. Every
// request gets at least one notice except a chat line that reached its
// room (it is not echoed, and goes to nobody in a room of one).
func (e *Engine) Handle(v View, in Input) Result {
	c := call{e: e, v: v, in: in, spec: in.kind.spec()}
	switch in.kind {
	case cmdChat:
		return c.chat()
	case cmdCreate:
		return c.create()
	case cmdJoin:
		return c.join()
	case cmdInvite:
		return c.invite()
	case cmdAccept:
		return c.accept()
	case cmdDeny:
		return c.deny()
	case cmdRemove:
		return c.remove()
	case cmdExit:
		return c.exit()
	case cmdDestroy:
		return c.destroy()
	case cmdList:
		return c.list()
	case cmdHelp:
		return c.ok(nil, []Notice{c.reply(in.RURI, e.help)})
	case cmdRooms:
		return c.rooms()
	case cmdAdd:
		return c.add()
	case cmdModify:
		return c.modify()
	case cmdHistory:
		return c.history()
	case cmdTopic:
		return c.topic()
	case cmdBan:
		return c.ban()
	case cmdUnban:
		return c.unban()
	case cmdBans:
		return c.bans()
	case cmdModerate:
		return c.moderate()
	case cmdVoice, cmdDevoice:
		return c.voice(in.kind == cmdVoice)
	}
	return c.refuse(txtInvalid(e.sc, in.Req.Body[1:1+len(in.cmd.Name)]))
}

// call is one Handle in progress.
type call struct {
	e    *Engine
	v    View
	in   Input // a copy, so that nothing Handle was given escapes through it
	spec cmdSpec
	room *Room // the room the request concerns, once looked up and found
}

func (c *call) ok(changes []Change, notices []Notice) Result {
	return Result{Command: c.spec.name, Outcome: OK, Changes: changes, Notices: notices}
}

// refuse answers the sender alone. The reply comes from the room when there
// is one, else from the URI the command was sent to.
func (c *call) refuse(body string) Result {
	from := c.in.RURI
	if c.room != nil {
		from = c.room.URI
	}
	return Result{Command: c.spec.name, Outcome: Refused, Notices: []Notice{c.reply(from, body)}}
}

// reply is a notice to the sender, answering the command.
func (c *call) reply(from URI, body string) Notice {
	return Notice{From: from, To: c.in.From, Body: body, ContentType: textPlain, InReplyTo: c.in.replyID}
}

func (c *call) answer() answer { return answer{sender: c.in.From, id: c.in.replyID} }

// answer addresses notices; the ones that reach the sender of the command
// carry its Call-ID, whether they were written for the sender alone or for
// the whole room (the joiner's copy of "has joined" is its answer to #join).
// The zero answer (operator actions) marks none.
type answer struct {
	sender URI
	id     string
}

func (a answer) to(from, to URI, body string) Notice {
	n := Notice{From: from, To: to, Body: body, ContentType: textPlain}
	if a.id != "" && to.Equal(a.sender) {
		n.InReplyTo = a.id
	}
	return n
}

// tell appends body from r to every member of r that keep accepts.
func (a answer) tell(ns []Notice, r *Room, body string, keep func(Member) bool) []Notice {
	for _, m := range r.members {
		if keep(m) {
			ns = append(ns, a.to(r.URI, m.URI, body))
		}
	}
	return ns
}

func active(m Member) bool { return m.Active() }

func everyone(Member) bool { return true }

// usage shows the command as the sender typed it (an alias stays an alias).
func (c *call) usage() string { return c.e.sc + c.in.cmd.Name + c.spec.args }

// syntax checks what needs no room: the parameter count, the room argument,
// and that a command sent to the manager names its room. It returns the
// refusal, or "".
func (c *call) syntax() string {
	p := c.in.cmd.Params
	if !c.in.kind.takesReason() && (c.in.cmd.TooMany || len(p) > c.spec.max) {
		return txtTooMany(c.usage())
	}
	if len(p) < c.spec.min {
		return txtMissingArg(c.usage())
	}
	if c.in.roomErr != nil {
		return txtBadRoom(p[c.spec.roomArg], reason(c.in.roomErr))
	}
	if c.spec.roomArg >= 0 && c.in.room.IsZero() {
		return txtNameRoom(c.in.RURI, c.e.sc+c.in.cmd.Name+strings.Replace(c.spec.args, "[<room>]", "<room>", 1))
	}
	return ""
}

// userArg parses parameter i as a user; a bare name takes the request URI's
// domain.
func (c *call) userArg(i int) (URI, string) {
	arg := c.in.cmd.Params[i]
	u, err := ParseArg(arg, c.in.RURI.Host)
	if err != nil {
		return URI{}, txtBadUser(arg, reason(err))
	}
	return u, ""
}

// reason is the part of a URI error that is fit for a reply.
func reason(err error) string {
	var ue *URIError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return "not a SIP address"
}

// lookup finds the room the request concerns and remembers it, so that
// refusals come from it.
func (c *call) lookup() *Room {
	if c.in.key == "" {
		return nil
	}
	c.room = c.v.Room(c.in.key)
	return c.room
}

// existing runs syntax and lookup for a command about an existing room.
func (c *call) existing() (*Room, string) {
	if msg := c.syntax(); msg != "" {
		return nil, msg
	}
	r := c.lookup()
	if r == nil {
		return nil, txtNoSuchRoom(c.in.room)
	}
	return r, ""
}

// activeSender returns the sender's membership of c.room, or the refusal for
// a stranger, or pending for a pending invitee.
func (c *call) activeSender(pending string) (Member, string) {
	m, ok := c.room.Member(c.in.From)
	if !ok {
		return Member{}, txtNotMember(c.room.URI)
	}
	if m.Invited() {
		return Member{}, pending
	}
	return m, ""
}

// manager returns the sender's membership when it may invite, add and
// remove: the owner or an admin.
func (c *call) manager() (Member, string) {
	m, msg := c.activeSender(txtPending(c.e.sc, c.room.URI))
	if msg == "" && !m.Owner() && !m.Admin() {
		msg = txtNeedAdmin(c.e.sc, c.in.cmd.Name, c.room.URI)
	}
	return m, msg
}

// roomTooLong reports whether the room's URI, which imc_members.room holds,
// exceeds the column.
func roomTooLong(u URI) bool { return len("sip:")+len(u.User)+1+len(u.Host) > MaxFieldLen }

// userTooLong reports whether u's user or domain exceeds its column.
func userTooLong(u URI) bool { return len(u.User) > MaxFieldLen || len(u.Host) > MaxFieldLen }

// reserved reports whether a new room may not take u's name.
func (e *Engine) reserved(u URI) bool { return e.isManager(u) }
