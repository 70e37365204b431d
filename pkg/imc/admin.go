package imc

import "fmt"

// AdminKind is an operator action from the MI.
type AdminKind uint8

// Operator actions.
const (
	AdminCreate   AdminKind = iota + 1 // create Room (Private) owned by User
	AdminDestroy                       // destroy Room, telling its members
	AdminAdd                           // add User to Room as an active member
	AdminRemove                        // remove User from Room (never the owner)
	AdminSetRole                       // set User's Role in Room
	AdminNotice                        // send Text to every active member of Room
	AdminBan                           // ban User from Room (Text: the reason), removing them if present
	AdminUnban                         // lift User's ban from Room
	AdminModerate                      // make Room moderated (Moderated) or not
)

// String returns the Result.Command of the action: "admin-create",
// "admin-destroy", "admin-add", "admin-remove", "admin-set-role",
// "admin-notice", "admin-ban", "admin-unban", "admin-moderate".
func (k AdminKind) String() string {
	switch k {
	case AdminCreate:
		return "admin-create"
	case AdminDestroy:
		return "admin-destroy"
	case AdminAdd:
		return "admin-add"
	case AdminRemove:
		return "admin-remove"
	case AdminSetRole:
		return "admin-set-role"
	case AdminNotice:
		return "admin-notice"
	case AdminBan:
		return "admin-ban"
	case AdminUnban:
		return "admin-unban"
	case AdminModerate:
		return "admin-moderate"
	}
	return fmt.Sprintf("admin(%d)", uint8(k))
}

// AdminOp is one operator action. It goes through the same rules, store and
// delivery as a SIP command, with the operator's authority.
type AdminOp struct {
	Kind    AdminKind
	Room    URI
	Private bool
	User    URI
	Role    Role
	// Text is the notice's text (AdminNotice), or the reason of a removal
	// or ban ("" for none).
	Text string
	// Moderated is what AdminModerate makes the room.
	Moderated bool
}

// RoomKey is the key of the room op concerns; the daemon routes by it as it
// does by Input.RoomKey.
func (op AdminOp) RoomKey() string { return op.Room.Key() }

// Admin applies an operator action from the MI with the operator's
// authority, within the room and member policy. Errors wrap ErrNoSuchRoom,
// ErrRoomExists, ErrNotMember, ErrAlreadyMember, ErrBanned, ErrNotBanned,
// ErrOwner, ErrTooLong, ErrPolicy or ErrBadArgument and say what was wrong. Create requires op.User as owner (new room, owner member, owner
// told "*** room was created"); Destroy tells all members "The room has been
// destroyed"; Add adds an active member (broadcast joined); Remove never the
// owner (target told, room told "has been removed"); SetRole as #modify but
// by the operator (granting owner transfers ownership, the old owner becomes
// admin; the owner cannot be demoted except by transferring; setting the
// role a member has is a Result without changes); Notice sends op.Text to
// every active member, from the room URI. Remove and Ban carry op.Text as
// the reason. Ban removes the user if present (never the owner; the user
// told, the room told "has been banned") and keeps them out; Unban lifts a
// ban (the room told); Moderate makes the room moderated or not (the room
// told; the state it has already is a Result without changes). A banned
// user cannot be added. Notices carry no InReplyTo.
func (e *Engine) Admin(v View, op AdminOp) (Result, error) {
	res := Result{Command: op.Kind.String(), Outcome: OK}
	if op.Kind < AdminCreate || op.Kind > AdminModerate {
		return res, fmt.Errorf("%w: unknown operator action %d", ErrBadArgument, op.Kind)
	}
	if reason := op.Room.check(); reason != "" {
		return res, fmt.Errorf("%w: room %q: %s", ErrBadArgument, op.Room.String(), reason)
	}
	if op.Kind != AdminDestroy && op.Kind != AdminNotice && op.Kind != AdminModerate {
		if reason := op.User.check(); reason != "" {
			return res, fmt.Errorf("%w: user %q: %s", ErrBadArgument, op.User.String(), reason)
		}
	}
	r := v.Room(op.Room.Key())
	if op.Kind == AdminCreate {
		return e.adminCreate(res, r, op)
	}
	if r == nil {
		return res, fmt.Errorf("room %s: %w", op.Room, ErrNoSuchRoom)
	}
	var a answer // operator actions answer nobody's MESSAGE
	switch op.Kind {
	case AdminDestroy:
		res.Changes, res.Notices = destruction(a, r)
	case AdminAdd:
		m, ok := r.Member(op.User)
		if ok && m.Active() {
			return res, fmt.Errorf("%s in room %s: %w", m.URI, r.URI, ErrAlreadyMember)
		}
		if b, banned := r.Banned(op.User); banned {
			return res, fmt.Errorf("%s from room %s; unban them first: %w", b.User, r.URI, ErrBanned)
		}
		if !ok {
			if err := e.adminMemberError(op.User, r.URI, "added"); err != nil {
				return res, err
			}
		}
		if ok {
			res.Changes = []Change{{Op: OpUpdateMember, Room: r.URI, Member: m.URI, MemberFlags: m.Flags &^ MemberInvited}}
			res.Notices = joinedNotices(a, r, m.URI, true)
			break
		}
		if err := lengths(r.URI, op.User); err != nil {
			return res, err
		}
		res.Changes = []Change{{Op: OpAddMember, Room: r.URI, Member: op.User}}
		res.Notices = joinedNotices(a, r, op.User, false)
	case AdminRemove:
		m, ok := r.Member(op.User)
		if !ok {
			return res, fmt.Errorf("%s in room %s: %w", op.User, r.URI, ErrNotMember)
		}
		if m.Owner() {
			return res, fmt.Errorf("%s owns room %s: %w", m.URI, r.URI, ErrOwner)
		}
		if err := reasonFits(op.Text); err != nil {
			return res, err
		}
		res.Changes, res.Notices = removal(a, r, m, op.Text)
	case AdminBan:
		if b, banned := r.Banned(op.User); banned {
			return res, fmt.Errorf("%s is already banned from room %s: %w", b.User, r.URI, ErrBanned)
		}
		if m, ok := r.Member(op.User); ok && m.Owner() {
			return res, fmt.Errorf("%s owns room %s: %w", m.URI, r.URI, ErrOwner)
		}
		if err := reasonFits(op.Text); err != nil {
			return res, err
		}
		if err := lengths(r.URI, op.User); err != nil {
			return res, err
		}
		res.Changes, res.Notices = banning(a, r, op.User, URI{}, op.Text)
	case AdminUnban:
		b, banned := r.Banned(op.User)
		if !banned {
			return res, fmt.Errorf("%s from room %s: %w", op.User, r.URI, ErrNotBanned)
		}
		res.Changes, res.Notices = unbanning(a, r, b)
	case AdminModerate:
		if r.Moderated() != op.Moderated {
			res.Changes, res.Notices = moderating(a, r, op.Moderated, URI{})
		}
	case AdminSetRole:
		if op.Role > RoleOwner {
			return res, fmt.Errorf("%w: unknown role %d", ErrBadArgument, op.Role)
		}
		m, ok := r.Member(op.User)
		if !ok || m.Invited() {
			return res, fmt.Errorf("%s is not an active member of room %s: %w", op.User, r.URI, ErrNotMember)
		}
		if m.Role() == op.Role {
			return res, nil
		}
		if m.Owner() {
			return res, fmt.Errorf("%s owns room %s; make another member the owner instead: %w", m.URI, r.URI, ErrOwner)
		}
		res.Changes, res.Notices = roleChange(a, r, m, op.Role)
	case AdminNotice:
		if blank(op.Text) {
			return res, fmt.Errorf("%w: empty notice text", ErrBadArgument)
		}
		if max := e.cfg.MaxBody; max > 0 && len(op.Text) > max {
			return res, fmt.Errorf("notice text of %d bytes, the limit is %d: %w", len(op.Text), max, ErrTooLong)
		}
		res.Notices = a.tell(make([]Notice, 0, len(r.members)), r, op.Text, active)
	}
	return res, nil
}

func (e *Engine) adminCreate(res Result, existing *Room, op AdminOp) (Result, error) {
	if existing != nil {
		return res, fmt.Errorf("room %s: %w", existing.URI, ErrRoomExists)
	}
	if e.reserved(op.Room) {
		return res, fmt.Errorf("%w: the name %s is reserved for the room manager", ErrBadArgument, op.Room.User)
	}
	if err := e.adminRoomError(op.Room); err != nil {
		return res, err
	}
	if err := e.adminMemberError(op.User, op.Room, "the owner"); err != nil {
		return res, err
	}
	if err := lengths(op.Room, op.User); err != nil {
		return res, err
	}
	var flags RoomFlags
	if op.Private {
		flags = RoomPrivate
	}
	res.Changes = []Change{
		{Op: OpCreateRoom, Room: op.Room, RoomFlags: flags},
		{Op: OpAddMember, Room: op.Room, Member: op.User, MemberFlags: MemberOwner},
	}
	res.Notices = []Notice{{From: op.Room, To: op.User, Body: txtCreated, ContentType: textPlain}}
	return res, nil
}

// reasonFits checks the length of a removal's or ban's reason.
func reasonFits(reason string) error {
	if len(reason) > MaxReasonLen {
		return fmt.Errorf("reason of %d bytes, the limit is %d: %w", len(reason), MaxReasonLen, ErrTooLong)
	}
	return nil
}

// lengths checks that a member row for user in room fits the columns.
func lengths(room, user URI) error {
	if roomTooLong(room) {
		return fmt.Errorf("room address %s is longer than %d characters: %w", room, MaxFieldLen, ErrTooLong)
	}
	if userTooLong(user) {
		return fmt.Errorf("user %s: user and domain are limited to %d characters each: %w", user, MaxFieldLen, ErrTooLong)
	}
	return nil
}
